"""The Streamlit review app; the package ships this folder as `fercleaner.app` (setup.py).

`fercleaner review RUN_DIR` runs `streamlit_app.py` from here; the app reads the run
through `fercleaner.review` and imports no torch.
"""
