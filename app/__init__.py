"""The Streamlit review app; the package ships it as `fercleaner.app` (a link to this folder).

`fercleaner review RUN_DIR` runs `streamlit_app.py` from here; the app reads the run
through `fercleaner.review` and imports no torch.
"""
