"""The web UI parts: the only package that imports streamlit (besides the page files).

Each module renders one thing and calls the layers below for everything else
(queue, learning, auth, ingest, importing, export); none opens SQL of its own.
"""
