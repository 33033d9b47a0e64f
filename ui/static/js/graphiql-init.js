// Boots the vendored GraphiQL (no CDN, no inline script: the page's CSP forbids both).
(function () {
  "use strict";
  var wsScheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  var endpoint = document.body.getAttribute("data-endpoint") || "/graphql";
  var fetcher = GraphiQL.createFetcher({
    url: window.location.origin + endpoint,
    subscriptionUrl: wsScheme + "//" + window.location.host + endpoint,
  });
  var defaultQuery =
    "# devlog GraphQL API. Ctrl-Enter runs the query; the Docs pane lists every field.\n" +
    "{\n  health {\n    version\n    database\n    databaseVersion\n    storage\n    timescale\n  }\n}\n";
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultEditorToolsVisibility: true,
      shouldPersistHeaders: true,
    })
  );
})();
