"""Email content: MJML templates rendered with Jinja, each recipient's context, product recommendations."""
