import cv2
import numpy as np
import pytest
import torch
from helpers import shared_path

from wnet.datasets.images import ImageFolder, bsds_files, read_image
from wnet.datasets.procedural import ProceduralShapes, make_image
from wnet.datasets.transforms import make_transforms


def test_procedural_is_deterministic_and_labelled():
    a_img, a_lab = make_image(3, 48, seed=1)
    b_img, b_lab = make_image(3, 48, seed=1)
    c_img, _ = make_image(4, 48, seed=1)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab)
    assert not np.array_equal(a_img, c_img)
    assert a_img.shape == (48, 48, 3) and a_img.dtype == np.uint8
    ids = np.unique(a_lab)
    assert ids.tolist() == list(range(len(ids))) and len(ids) >= 2  # contiguous region ids
    # regions differ in mean colour far more than the noise level
    means = np.array([a_img[a_lab == i].mean(0) for i in ids])
    gaps = [np.abs(means[i] - means[j]).max() for i in range(len(ids)) for j in range(i)]
    assert min(gaps) > 20


@pytest.mark.parametrize("channels", [1, 3])
def test_procedural_dataset_items(channels):
    ds = ProceduralShapes(4, 32, seed=0, in_channels=channels)
    item = ds[0]
    assert item["image"].shape == (channels, 32, 32) and item["image"].dtype == torch.float32
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    assert item["label"].shape == (32, 32) and item["label"].dtype == torch.int64


@pytest.mark.parametrize(
    "kind, make",
    [
        ("grey8", lambda: np.full((5, 6), 128, np.uint8)),
        ("rgb8", lambda: np.dstack([np.full((5, 6), v, np.uint8) for v in (10, 20, 30)])),  # BGR on disk
        ("rgba8", lambda: np.dstack([np.full((5, 6), v, np.uint8) for v in (10, 20, 30, 255)])),
        ("grey16", lambda: np.full((5, 6), 65535, np.uint16)),
    ],
)
@pytest.mark.parametrize("channels", [1, 3])
def test_read_image_formats(tmp_path, kind, make, channels):
    path = tmp_path / f"{kind}.png"
    cv2.imwrite(str(path), make())
    img = read_image(path, channels)
    assert img.shape == (5, 6, channels) and img.dtype == np.float32
    if kind == "grey16":
        assert np.allclose(img, 1.0)
    if kind in ("rgb8", "rgba8") and channels == 3:
        assert np.allclose(img[0, 0], np.array([30, 20, 10]) / 255)  # BGR on disk -> RGB
    if kind == "grey8":
        assert np.allclose(img, 128 / 255)


def test_read_image_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.png"):
        read_image(tmp_path / "nothere.png")


def test_image_folder_recursive_with_transform(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "a" / "x.jpg"), np.zeros((40, 50, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "a" / "b" / "y.bmp"), np.zeros((30, 20), np.uint8))
    cv2.imwrite(str(tmp_path / "z.tif"), np.zeros((64, 64, 3), np.uint16))
    (tmp_path / "notes.txt").write_text("not an image")
    ds = ImageFolder(tmp_path, channels=3, transform=make_transforms(True, 16, scale=(1.0, 1.0)))
    assert len(ds) == 3
    for i in range(3):
        assert ds[i]["image"].shape == (3, 16, 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        ImageFolder(tmp_path / "empty")


def test_bsds_files_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="images/test"):
        bsds_files(tmp_path, "test")
    (tmp_path / "images" / "val").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "images" / "val" / "1.jpg"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match="no ground truth.*1.mat"):
        bsds_files(tmp_path, "val")


def test_bsds_layout_on_real_data():
    root = shared_path("BSDS500")
    images, gts = bsds_files(root, "test")
    assert len(images) == 200 and all(g.suffix == ".mat" for g in gts)
    img = read_image(images[0])
    assert sorted(img.shape[:2]) == [321, 481]
