"""The page of ``headpose serve`` in headless Chromium: a fake webcam (a .y4m clip of the astronaut
moving across the frame) streamed over the WebSocket must show a tracked head, and a photo picked
in the file input must too. Skips where Debian's ``chromium`` / ``chromium-driver`` or Selenium is
missing (nothing is downloaded: Selenium is pointed at /usr/bin/chromium and /usr/bin/chromedriver).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("selenium")

from conftest import needs_face_models

CHROMIUM = os.environ.get("OPENHEADPOSE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("OPENHEADPOSE_CHROMEDRIVER", "/usr/bin/chromedriver")

pytestmark = [
    needs_face_models,
    pytest.mark.skipif(not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)), reason=f"no {CHROMIUM} / {CHROMEDRIVER}: apt-get install chromium chromium-driver"),
]


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 15) -> Path:
    """A YUV4MPEG2 clip (Chromium's fake-webcam format): a text header, then each frame's I420 planes."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        f.writelines(b"FRAME\n" + cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes() for rgb in frames)
    return path


def astronaut_clip(path: Path, n: int = 30) -> Path:
    """640x480 frames: the astronaut (scaled to 400 px) sliding left to right and back."""
    from skimage.data import astronaut

    face = cv2.resize(astronaut(), (400, 400), interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(n):
        x = int(round(240 * (1 - abs(1 - 2 * i / (n - 1)))))  # 0 -> 240 -> 0
        frame = np.full((480, 640, 3), 40, np.uint8)
        frame[40:440, x : x + 400] = face
        frames.append(frame)
    return write_y4m(path, frames)


@pytest.fixture(scope="module")
def server_url():
    """The app on a real uvicorn in a thread, on a free port of 127.0.0.1 (the page's getUserMedia needs a secure origin)."""
    import uvicorn

    from openheadpose.serve.app import create_app

    app = create_app()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not (server.started and app.state.estimators.ready()):
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    clip = astronaut_clip(tmp_path_factory.mktemp("webcam") / "clip.y4m")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,900", "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}"):  # fmt: skip
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def status(driver) -> dict:
    return driver.execute_script("return Object.assign({}, document.getElementById('status').dataset);")


def wait_for(driver, cond, what: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        s = status(driver)
        if cond(s):
            return s
        if time.monotonic() > deadline:
            msg = driver.find_element("id", "message").text
            raise AssertionError(f"timed out waiting for {what}; status {s}, message {msg!r}")
        time.sleep(0.1)


def test_webcam_heads_are_tracked_and_drawn(server_url, browser, tmp_path):
    browser.get(server_url + "/")
    browser.find_element("id", "webcam").click()
    s = wait_for(browser, lambda s: int(s.get("frames", 0)) >= 5 and int(s.get("heads", 0)) >= 1 and s.get("trackIds"), "a tracked head in 5 frames")
    assert s["state"] == "streaming" and "error" not in s
    assert s["trackIds"].split(",")[0] == "0"  # the one head keeps the first id while it moves
    assert browser.find_element("id", "fps").text.endswith("fps") or int(s["frames"]) < 10
    shot = tmp_path / "webcam.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    canvas = browser.execute_script("const c = document.getElementById('view'); return [c.width, c.height];")
    assert canvas == [640, 480]  # the fake webcam's frames, drawn at their size
    # the overlay is drawn: the canvas holds the box's yellow (255, 212, 0) somewhere
    yellow = browser.execute_script(
        "const c = document.getElementById('view'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 240 && d[i+1] > 195 && d[i+1] < 230 && d[i+2] < 30) n++; return n;"
    )
    assert yellow > 100
    # the live chart (chart.js) holds the head's track and draws it in the first track colour (#1f77b4)
    chart = browser.execute_script("return Object.assign({}, document.getElementById('chart').dataset);")
    assert chart["tracks"].split(",")[0] == "0" and int(chart["points"]) >= 3, chart
    blue = browser.execute_script(
        "const c = document.getElementById('chart'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i]-31) < 12 && Math.abs(d[i+1]-119) < 12 && Math.abs(d[i+2]-180) < 12 && d[i+3] > 200) n++; return n;"
    )
    assert blue > 20
    browser.find_element("id", "stop").click()
    wait_for(browser, lambda s: s.get("state") == "idle", "the stream to stop", 10)
    assert browser.execute_script("return document.getElementById('chart').dataset.points;") == "0"


def test_photo_is_predicted_and_drawn(server_url, browser, tmp_path):
    from skimage.data import astronaut

    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), astronaut()[:, :, ::-1])
    browser.get(server_url + "/")
    browser.find_element("id", "photo").send_keys(str(photo))
    s = wait_for(browser, lambda s: s.get("frames") == "1", "the photo's answer")
    assert s["heads"] == "1" and s["trackIds"] == "0" and "error" not in s
    assert browser.execute_script("const c = document.getElementById('view'); return [c.width, c.height];") == [512, 512]
    assert "1 heads" in browser.find_element("id", "message").text
    browser.save_screenshot(str(tmp_path / "photo.png"))
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
