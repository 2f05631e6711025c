"""Reading image files: bytes through ``cv2.imdecode`` (any file name), truncated files refused.

A JPEG cut short decodes with libjpeg's "Premature end of JPEG file" warning and a grey lower part;
OpenCV does not report it back, so ``wnet.datasets.images.truncation`` checks the structure.
"""

import os

import cv2
import numpy as np
import pytest
from helpers import shared_path

from wnet.datasets.images import ImageFolder, decode_file, read_image, shown, truncation
from wnet.datasets.paired import read_mask
from wnet.datasets.procedural import make_image
from wnet.tasks import cli
from wnet.tasks.build import Checked
from wnet.tasks.errors import InputError
from wnet.visualize import save_rgb


def _encoded(ext: str, size: int = 96) -> bytes:
    rgb, _ = make_image(1, size, seed=2)
    ok, data = cv2.imencode(ext, np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    return data.tobytes()


def _with_exif_thumbnail(jpeg: bytes) -> bytes:
    """``jpeg`` with an APP1 (Exif) segment after SOI holding a complete small JPEG, as cameras write:
    its end-of-image marker FF D9 comes long before the main image's."""
    thumb = _encoded(".jpg", 16)
    body = b"Exif\x00\x00" + thumb
    app1 = b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body
    return jpeg[:2] + app1 + jpeg[2:]


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp"])
def test_a_whole_file_passes_and_every_cut_is_caught(ext):
    data = _encoded(ext)
    assert truncation(data) is None
    assert truncation(data + b"\x00" * 64) is None  # bytes after the end (camera trailers) are allowed
    for cut in (len(data) // 4, len(data) // 2, len(data) - 2, 40):
        assert truncation(data[:cut]) is not None, (ext, cut, len(data))


def test_the_thumbnail_s_end_marker_does_not_hide_a_cut():
    data = _with_exif_thumbnail(_encoded(".jpg"))
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None
    cut = data[: len(data) - 400]
    assert b"\xff\xd9" in cut  # the thumbnail's: a search for FF D9 anywhere would pass this file
    assert truncation(data) is None
    assert truncation(cut) == "no JPEG end-of-image marker (FF D9)"


def test_a_cut_jpeg_is_refused_naming_the_file_where_imread_returned_an_image(tmp_path):
    data = _encoded(".jpg", 128)
    assert len(data) > 8000
    (tmp_path / "cut.jpg").write_bytes(data[:5000])
    grey = cv2.imread(str(tmp_path / "cut.jpg"))  # libjpeg warns on stderr, OpenCV returns an image:
    assert grey is not None and grey.shape == (128, 128, 3)  # what the old loader trained on
    with pytest.raises(ValueError, match=r"cannot read image .*cut\.jpg: it is truncated \(no JPEG end"):
        read_image(tmp_path / "cut.jpg")
    with pytest.raises(ValueError, match="cannot read mask .*it is truncated"):
        read_mask(tmp_path / "cut.jpg")
    # the training loaders: one InputError naming the file (exit code 3)
    with pytest.raises(InputError, match=r"cut\.jpg: it is truncated"):
        Checked(ImageFolder([tmp_path / "cut.jpg"]))[0]


def test_names_that_are_not_utf8_read_write_and_print_escaped(tmp_path):
    """OpenCV's imread of such a name was a segmentation fault; now Python opens the file."""
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 e-acute: a lone surrogate in Python's str
    rgb, _ = make_image(0, 24, seed=1)
    save_rgb(tmp_path / name, rgb)
    assert os.fsencode(tmp_path / name) == os.fsencode(tmp_path) + b"/caf\xe9.png"
    np.testing.assert_allclose(read_image(tmp_path / name), rgb / 255.0, atol=1e-6)
    item = ImageFolder(tmp_path)[0]
    assert item["name"] == "caf\\xe9" and shown(tmp_path / name).endswith("caf\\xe9.png")
    ok, png = cv2.imencode(".png", np.arange(12, dtype=np.uint8).reshape(3, 4))
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / name).write_bytes(png.tobytes())
    np.testing.assert_array_equal(read_mask(tmp_path / "masks" / name), np.arange(12).reshape(3, 4))
    with pytest.raises(FileNotFoundError, match=r"caf\\xe9\.gif: no such file"):
        decode_file(tmp_path / os.fsdecode(b"caf\xe9.gif"))


def test_a_training_run_on_a_folder_with_such_a_name(tmp_path):
    """The crash was signal 11 with nothing written; now the image trains and its sample panel is
    named with the escape (the held-out image is the last file: 0xE9 sorts after ASCII)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, name in enumerate(["a.png", "b.png", os.fsdecode(b"caf\xe9.png")]):
        save_rgb(photos / name, make_image(i, 32, seed=3)[0])
    args = [
        "data.name=folder",
        f"data.root={photos}",
        "data.image_size=32",
        "model.base_width=4",
        "model.k=4",
    ]
    args += [
        "train.batch_size=2",
        "train.iterations=2",
        "ncut.radius=3",
        "train.threads=1",
        f"out_dir={tmp_path}",
    ]
    cli.main(args)
    assert sorted(p.name for p in (tmp_path / "default" / "samples").iterdir()) == ["caf\\xe9.png"]


def test_every_bsds500_jpeg_is_whole_and_its_cut_is_not():
    """No false alarm on the canonical data; the same files cut at 5000 bytes are all caught."""
    images = sorted(shared_path("BSDS500", "images").rglob("*.jpg"))
    assert len(images) == 500
    for p in images:
        data = p.read_bytes()
        assert truncation(data) is None, p
        assert truncation(data[:5000]) is not None, p
