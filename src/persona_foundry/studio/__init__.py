"""The studio: a local web app to see, fix and approve a month of content.

`app.create_app(StudioConfig(...))` builds it; `cli.studio` serves it. It reads and writes only
through the store; its views call the functions the CLI calls. Nothing is imported here, so the
other commands start without the web stack.
"""
