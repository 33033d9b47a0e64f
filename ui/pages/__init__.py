"""The dashboard's pages: server-rendered Jinja pages and fragments that call the same services
as the GraphQL resolvers (no SQL here)."""

from __future__ import annotations

from litestar import Router
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from ui.pages import live, overview, projects, session, sessions, tools, usage
from ui.render import environment

PAGES = [
    overview.overview_page,
    sessions.sessions_page,
    session.session_page,
    session.session_events_page,
    projects.projects_page,
    projects.project_page,
    usage.usage_page,
    usage.usage_csv,
    tools.tools_page,
    live.live_overview,
    live.live_session,
    live.live_sessions,
]


def routes() -> list:
    """The pages and live streams (READ for the app's access guard: ``app/access/routes.py``;
    without a key a page redirects to the sign-in form), and the sign-in pages."""
    from app.access.routes import RouteDenied
    from ui import auth

    pages = Router(path="/", route_handlers=PAGES,
                   exception_handlers={RouteDenied: auth.login_redirect})
    return [pages, auth.login_form, auth.login, auth.logout]


def template_config() -> TemplateConfig:
    return TemplateConfig(engine=JinjaTemplateEngine.from_environment(environment()))
