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
    """The pages and live streams behind the reader check, and the login pages in front."""
    from ui import auth

    guarded = Router(path="/", route_handlers=PAGES, guards=[auth.require_reader],
                     exception_handlers={auth.LoginRequired: auth.login_redirect})
    return [guarded, auth.login_form, auth.login, auth.logout]


def template_config() -> TemplateConfig:
    return TemplateConfig(engine=JinjaTemplateEngine.from_environment(environment()))
