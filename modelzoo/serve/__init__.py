"""`modelzoo serve`: every registered model behind one HTTP service and a web page.

app.py holds the routes, sessions.py the bounded model cache and the bounded work queue, metrics.py the
Prometheus counters, page.html the page served at `/`. Sessions are opened only through `modelzoo.load`, and
an answer is encoded by `imaging.encode_photo`, so it holds exactly the bytes `modelzoo run` writes for that
build. Needs the serve extra: pip install -e ".[serve]" (FastAPI and uvicorn).
"""
