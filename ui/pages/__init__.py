"""The dashboard's pages: server-rendered Jinja pages and fragments that call the same services
as the GraphQL resolvers (no SQL here)."""

from __future__ import annotations

from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from ui.pages import live, overview, projects, session, sessions
from ui.render import environment

ROUTES = [
    overview.overview_page,
    sessions.sessions_page,
    session.session_page,
    session.session_events_page,
    projects.projects_page,
    projects.project_page,
    live.live_overview,
    live.live_session,
    live.live_sessions,
]


def template_config() -> TemplateConfig:
    return TemplateConfig(engine=JinjaTemplateEngine.from_environment(environment()))
