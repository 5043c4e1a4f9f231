# A small Flask app (Debian's python3-flask): the "Flask" app of the
# benchmarks and of the demo.
from flask import Flask, jsonify, request

app = Flask(__name__)
posts = [{"id": 1, "title": "Hello, lodge", "body": "Saved a file, it is live."}]


@app.route("/")
def index():
    return "Hello from Flask on lodge!\n"


@app.route("/posts")
def list_posts():
    return jsonify(posts)


@app.route("/echo", methods=["POST"])
def echo():
    return jsonify(form=request.form.to_dict(), length=request.content_length)


application = app
