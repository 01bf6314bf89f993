"""The customer portal: per-customer compliance, credits and breaches behind a token.

`feed` follows the compliance and breach topics into a `view`; `tokens` maps portal
tokens to customers; `access` tells who a request is (401, 403); `pages` renders the HTML
from the Jinja2 templates in `templates/`; `routes` adds the pages to the worker's web
server.
"""

from agents.portal.routes import add_portal

__all__ = ["add_portal"]
