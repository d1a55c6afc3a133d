"""Open and click tracking, one-click unsubscribe and provider webhooks: the `track serve` HTTP server
(server), its settings (settings) and the signed links the renderer writes (links).

Only `settings` is light enough to import from the CLI root; the server imports Starlette and uvicorn.
"""
