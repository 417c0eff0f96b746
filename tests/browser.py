"""Drive a page in headless Chromium (Debian's package) without a driver library: the page is loaded into an
iframe of a small harness page, a script checks or clicks things in it, and the result comes back through
--dump-dom. File pages share the harness's origin with --allow-file-access-from-files; console messages of
every frame are read from Chromium's log (--enable-logging=stderr)."""
import json
import os
import re
import shutil
import subprocess

CONSOLE = re.compile(r':(INFO|WARNING|ERROR):CONSOLE[^\]]*\] "(.*)", source: (\S+)')

HARNESS = """<!DOCTYPE html><html><body><pre id="result">pending</pre>
<iframe id="page" src="%(url)s" width="1280" height="1000"></iframe>
<script>
var frame = document.getElementById("page");
function settle(doc) {  // every image loaded (or failed) before the check runs
  return Promise.all(Array.prototype.map.call(doc.images, function (img) {
    return img.complete ? null : new Promise(function (done) { img.onload = img.onerror = done; });
  }));
}
frame.addEventListener("load", function () {
  var doc = frame.contentDocument, win = frame.contentWindow;
  settle(doc).then(function () {
    var images = Array.prototype.map.call(doc.images, function (img) {
      return {src: img.getAttribute("src"), loaded: img.naturalWidth > 0};
    });
    return Promise.resolve((function (doc, win) { %(script)s })(doc, win)).then(function (checked) {
      document.getElementById("result").textContent = JSON.stringify({images: images, checked: checked});
    });
  }).catch(function (error) {
    document.getElementById("result").textContent = JSON.stringify({error: String(error)});
  });
});
</script></body></html>
"""


def chromium():
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def check_page(page, script, tmp_path, budget_ms=10000):
    """Load `page` (a file path), run `script` (a JS function body over `doc` and `win`, returning a JSON-able
    value or a promise of one) once every image settled. Returns (result, console messages of level INFO+)."""
    harness = tmp_path / "harness.html"
    harness.write_text(HARNESS % {"url": page.resolve().as_uri(), "script": script})
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
               "--disable-background-networking", "--disable-component-update", "--allow-file-access-from-files",
               f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
               f"--virtual-time-budget={budget_ms}", "--dump-dom", harness.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(tmp_path)})
    found = re.search(r'<pre id="result">(.*?)</pre>', done.stdout, re.S)
    assert found, f"no result from chromium: {done.stderr[-2000:]}"
    text = found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    messages = [{"level": m.group(1), "text": m.group(2), "source": m.group(3)}
                for m in CONSOLE.finditer(done.stderr) if "harness.html" not in m.group(3)]
    return json.loads(text), messages
