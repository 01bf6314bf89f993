"""The customer portal: per-customer compliance, credits and breaches behind a token.

`feed` follows the compliance and breach topics into a `view`; `tokens` maps portal
tokens to customers; `pages` renders the HTML from templates; `routes` adds the pages
to the worker's web server.
"""

from agents.portal.routes import add_portal

__all__ = ["add_portal"]
