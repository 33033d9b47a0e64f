"""The one data layer. GraphQL resolvers, HTMX views, jobs and the CLI call these functions;
they return msgspec records and never import Litestar or Strawberry."""
