"""flaskapp: Debian's python3-flask in a lodge sub-interpreter."""
from wsgiref.validate import validator

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/")
def index():
    return "Hello from Flask\n"


@app.route("/json")
def as_json():
    return jsonify(app="flaskapp", items=[1, 2, 3], word="caf\u00e9")


@app.route("/form", methods=["POST"])
def form():
    return "Hello, %s! (%s)\n" % (request.form["name"],
                                  request.form.get("lang", "?"))


application = validator(app)
