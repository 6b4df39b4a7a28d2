"""The dashboard's logic that needs no Streamlit: importable from a plain Python shell.

``luma`` is the provider's client; this package is the product around it (access control,
text for pages, the web edge). ``pages/_support`` holds only the Streamlit glue over both.
"""
