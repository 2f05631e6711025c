import json

import cv2
import numpy as np
import pytest
import torch
from helpers import ROOT, shared_path
from PIL import Image

from wnet.datasets.classes import class_frequencies, load_classes, load_ignore_index
from wnet.datasets.paired import PairedFolderDataset
from wnet.datasets.transforms import make_transforms
from wnet.datasets.voc import VOCSegmentation
from wnet.visualize import colorize


def _write_pair(root, stem, label, image_dir="train", mask_dir="trainannot", image=None):
    """Image = label * 40 in grey (so the label can be read back from the pixels), mask = label."""
    (root / image_dir).mkdir(parents=True, exist_ok=True)
    (root / mask_dir).mkdir(parents=True, exist_ok=True)
    img = (label * 40).astype(np.uint8) if image is None else image
    cv2.imwrite(str(root / image_dir / f"{stem}.png"), img)
    cv2.imwrite(str(root / mask_dir / f"{stem}.png"), label.astype(np.uint8))


def _blocks(value, h=6, w=8):
    return np.full((h, w), value, np.uint8)


# ----------------------------------------------------------------------------- folders and errors


def test_stems_matched_in_natural_order(tmp_path):
    for stem, value in [("b", 4), ("10", 3), ("a", 1), ("2", 2)]:
        _write_pair(tmp_path, stem, _blocks(value))
    ds = PairedFolderDataset(tmp_path, "train", num_classes=5)
    assert [p.stem for p in ds.image_paths] == ["2", "10", "a", "b"]
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (3, 6, 8) and item["image"].dtype == torch.float32
        assert item["label"].dtype == torch.int64 and item["label"].shape == (6, 8)
        # the image encodes its own label: a mismatched pair would fail here
        assert torch.equal((item["image"][0] * 255 / 40).round().long(), item["label"])
        assert ds.mask_paths[i].stem == item["name"]


def test_image_without_mask_is_an_error_naming_it(tmp_path):
    _write_pair(tmp_path, "a", _blocks(1))
    cv2.imwrite(str(tmp_path / "train" / "lonely.png"), _blocks(0))
    with pytest.raises(FileNotFoundError, match=r"lonely\.png has no mask"):
        PairedFolderDataset(tmp_path, "train", num_classes=2)


def test_mask_without_image_warns(tmp_path):
    _write_pair(tmp_path, "a", _blocks(1))
    cv2.imwrite(str(tmp_path / "trainannot" / "orphan.png"), _blocks(0))
    with pytest.warns(UserWarning, match=r"orphan\.png"):
        ds = PairedFolderDataset(tmp_path, "train", num_classes=2)
    assert len(ds) == 1


def test_num_classes_from_class_file(tmp_path):
    _write_pair(tmp_path, "a", _blocks(10))
    ds = PairedFolderDataset(tmp_path, "train", classes_file="camvid", ignore_index=11)
    assert ds.num_classes == 11 and ds.class_names[10] == "Bicyclist" and ds.palette.shape == (11, 3)
    with pytest.raises(ValueError, match="lists 11 classes"):
        PairedFolderDataset(tmp_path, "train", num_classes=5, classes_file="camvid")
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        PairedFolderDataset(tmp_path, "train")


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="val"):
        PairedFolderDataset(tmp_path, "val", num_classes=2)


def test_mask_of_another_size_is_an_error_naming_it(tmp_path):
    _write_pair(tmp_path, "a", _blocks(1), image=np.zeros((6, 9), np.uint8))
    ds = PairedFolderDataset(tmp_path, "train", num_classes=2)
    with pytest.raises(ValueError, match=r"trainannot/a\.png is 6x8 but image .*a\.png is 6x9"):
        ds[0]


@pytest.mark.parametrize("ignore_index, ok", [(None, False), (9, True), (255, False)])
def test_label_out_of_range_names_file_and_value(tmp_path, ignore_index, ok):
    label = _blocks(1)
    label[0, 0] = 9
    _write_pair(tmp_path, "a", label)
    ds = PairedFolderDataset(tmp_path, "train", num_classes=3, ignore_index=ignore_index)
    if ok:
        assert ds[0]["label"][0, 0] == 9
    else:
        with pytest.raises(ValueError, match=r"a\.png: label 9 outside \[0, 2\]"):
            ds[0]


def test_binary_255_maps_to_0_1_and_rejects_other_values(tmp_path):
    label = np.zeros((4, 4), np.uint8)
    label[:, 2:] = 255
    _write_pair(tmp_path, "0", label, image_dir="image", mask_dir="label", image=label)
    ds = PairedFolderDataset(tmp_path, "all", "image", "label", num_classes=2, binary_255=True)
    assert ds[0]["label"].tolist() == [[0, 0, 1, 1]] * 4
    label[0, 0] = 128
    cv2.imwrite(str(tmp_path / "label" / "0.png"), label)
    with pytest.raises(ValueError, match=r"0\.png: binary_255 expects only 0 and 255, found 128"):
        ds[0]


def test_splitless_layout_splits_by_index(tmp_path):
    for i in range(8):
        _write_pair(tmp_path, str(i), _blocks(i % 2), image_dir="image", mask_dir="label")
    kw = dict(image_dir="image", mask_dir="label", num_classes=2, val_fraction=0.25)
    train, val = PairedFolderDataset(tmp_path, "train", **kw), PairedFolderDataset(tmp_path, "val", **kw)
    assert [p.stem for p in train.image_paths] == ["0", "1", "2", "3", "4", "5"]
    assert [p.stem for p in val.image_paths] == ["6", "7"]
    picked = PairedFolderDataset(tmp_path, "all", "image", "label", num_classes=2, indices=[7, 0])
    assert [p.stem for p in picked.image_paths] == ["7", "0"]
    with pytest.raises(ValueError, match="'train', 'val' or 'all'"):
        PairedFolderDataset(tmp_path, "test", **kw)


def test_channels_and_16_bit(tmp_path):
    grey16 = np.full((4, 5), 65535 // 5, np.uint16)
    _write_pair(tmp_path, "a", np.zeros((4, 5), np.uint8), image=grey16)
    rgb = PairedFolderDataset(tmp_path, "train", num_classes=1, in_channels=3)[0]["image"]
    grey = PairedFolderDataset(tmp_path, "train", num_classes=1, in_channels=1)[0]["image"]
    assert rgb.shape == (3, 4, 5) and grey.shape == (1, 4, 5)
    assert torch.allclose(rgb, torch.full_like(rgb, (65535 // 5) / 65535))


# ----------------------------------------------------------------------------- joint transforms


def _label_of(y, x):
    return (x // 6 + 2 * (y // 6)) % 5  # blocks of 6 px, labels 0..4


def _coordinate_sample(h=48, w=64):
    """Image channels: x / (w - 1), y / (h - 1), 1; mask: the block label of each (y, x)."""
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.stack([xx / (w - 1), yy / (h - 1), np.ones((h, w))]).astype(np.float32)
    return torch.from_numpy(image), torch.from_numpy(_label_of(yy, xx))


@pytest.mark.parametrize("ignore_index", [None, 255])
@pytest.mark.parametrize("seed", range(6))
def test_joint_transforms_keep_mask_aligned(seed, ignore_index):
    torch.manual_seed(seed)
    image, mask = _coordinate_sample()
    out_img, out_mask = make_transforms(True, 32, scale=(0.5, 2.0), ignore_index=ignore_index)(image, mask)
    assert out_img.shape == (3, 32, 32) and out_img.dtype == torch.float32
    assert out_mask.shape == (32, 32) and out_mask.dtype == torch.int64
    real = out_img[2] > 0.99  # padded pixels have 0 in the constant channel
    if ignore_index is not None:
        assert torch.all(out_mask[~real] == ignore_index)
    x0 = (out_img[0] * 63).numpy()  # source coordinates recovered from the image
    y0 = (out_img[1] * 47).numpy()
    # away from block edges, the label at the recovered source position must be the mask's
    safe = real.numpy() & (np.abs((x0 + 0.5) % 6 - 3) < 1.5) & (np.abs((y0 + 0.5) % 6 - 3) < 1.5)
    assert safe.sum() > 50
    expected = _label_of(np.round(y0).astype(int), np.round(x0).astype(int))
    np.testing.assert_array_equal(out_mask.numpy()[safe], expected[safe])


@pytest.mark.parametrize("train, size", [(False, 37), (False, (17, 29)), (True, 23)])
def test_mask_resizing_is_nearest_neighbour(train, size):
    torch.manual_seed(0)
    mask = torch.zeros(40, 50, dtype=torch.int64)
    mask[5:20, 10:30], mask[25:, 30:] = 3, 7
    image = mask[None].float().repeat(3, 1, 1) / 7
    out_img, out_mask = make_transforms(train, size, ignore_index=255)(image, mask)
    assert set(out_mask.unique().tolist()) <= {0, 3, 7, 255}
    assert len(out_img.unique()) > 3  # the image, unlike the mask, was interpolated


def test_eval_transform_full_resolution_is_identity():
    image, mask = _coordinate_sample()
    out_img, out_mask = make_transforms(False, 0)(image, mask)
    assert torch.equal(out_img, image) and torch.equal(out_mask, mask)


def test_transforms_reject_misaligned_inputs():
    with pytest.raises(ValueError, match="one size"):
        make_transforms(False, 0)(torch.zeros(3, 4, 5), torch.zeros(4, 6, dtype=torch.int64))


# ----------------------------------------------------------------------------- classes, frequencies


def test_class_frequencies_by_hand_and_without_decoding_images(tmp_path):
    _write_pair(tmp_path, "a", np.array([[0, 0], [1, 11]]))
    _write_pair(tmp_path, "b", np.array([[2, 2], [2, 11]]))
    for stem in "ab":  # corrupt the images: frequencies must only read masks
        (tmp_path / "train" / f"{stem}.png").write_bytes(b"not an image")
    ds = PairedFolderDataset(tmp_path, "train", num_classes=3, ignore_index=11)
    counts, freqs = class_frequencies(ds, 3, ignore_index=11)
    np.testing.assert_array_equal(counts, [2, 1, 3])
    np.testing.assert_allclose(freqs, [2 / 6, 1 / 6, 3 / 6])
    counts, _ = class_frequencies([torch.tensor([[0, 1]]), {"label": np.array([1, 1])}], 3)
    np.testing.assert_array_equal(counts, [1, 3, 0])
    with pytest.raises(ValueError, match="label 11"):
        class_frequencies(ds, 3)


def test_shipped_class_files():
    names, palette = load_classes(ROOT / "wnet" / "datasets" / "classes" / "camvid.yaml")
    assert names[0] == "Sky" and names[10] == "Bicyclist" and len(names) == 11
    assert palette.dtype == np.uint8 and palette.shape == (11, 3)
    assert palette[3].tolist() == [128, 64, 128]  # Road
    assert load_ignore_index("camvid") == 11
    names, palette = load_classes("isbi")
    assert names == ["membrane", "cell"] and load_ignore_index("isbi") is None
    names, palette = load_classes("voc")
    assert len(names) == 21 and palette[15].tolist() == [192, 128, 128]  # person
    # class palettes drive the shared colouring; labels outside the palette (ignore, -1) are black
    rgb = colorize(np.array([[0, 1, 11, -1]]), colours=load_classes("camvid")[1])
    assert rgb.tolist() == [[[128, 128, 128], [128, 0, 0], [0, 0, 0], [0, 0, 0]]]


def test_class_file_errors(tmp_path):
    good = tmp_path / "c.json"
    good.write_text(json.dumps({"classes": [{"name": "a", "color": [1, 2, 3]}]}))
    assert load_classes(good)[0] == ["a"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes:\n  - {name: a, color: [1, 2, 300]}\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: classes\[0\]\.color"):
        load_classes(bad)
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_classes(tmp_path / "nope.yaml")


# ----------------------------------------------------------------------------- Pascal VOC


def _fake_voc(root):
    base = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True)
    cv2.imwrite(str(base / "JPEGImages" / "2007_000001.jpg"), np.full((5, 7, 3), 128, np.uint8))
    label = np.zeros((5, 7), np.uint8)
    label[1:4, 2:5], label[0] = 15, 255
    im = Image.fromarray(label, mode="P")
    im.putpalette(load_classes("voc")[1].reshape(-1).tolist())
    im.save(base / "SegmentationClass" / "2007_000001.png")
    (base / "ImageSets" / "Segmentation" / "train.txt").write_text("2007_000001\n")


def test_voc_reads_palette_masks_with_ignore(tmp_path):
    _fake_voc(tmp_path)
    ds = VOCSegmentation(tmp_path, "train")
    item = ds[0]
    assert item["image"].shape == (3, 5, 7) and item["name"] == "2007_000001"
    assert item["label"].unique().tolist() == [0, 15, 255]
    counts, _ = class_frequencies(ds, 21, ignore_index=255)
    assert counts[0] == 19 and counts[15] == 9 and counts.sum() == 28


def test_voc_missing_says_how_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        VOCSegmentation(tmp_path, "train")


# ----------------------------------------------------------------------------- real data (optional)


def test_real_camvid_val():
    root = shared_path("CamVid")
    ds = PairedFolderDataset(root, "val", num_classes=11, ignore_index=11)
    assert len(ds) == 101
    for i in (0, len(ds) - 1):
        item = ds[i]
        assert item["image"].shape == (3, 360, 480) and item["label"].shape == (360, 480)
        assert item["label"].min() >= 0 and item["label"].max() <= 11


def test_real_isbi_split():
    root = shared_path("isbi2012")
    kw = dict(image_dir="image", mask_dir="label", num_classes=2, binary_255=True, val_fraction=0.2)
    train = PairedFolderDataset(root, "train", in_channels=1, **kw)
    val = PairedFolderDataset(root, "val", in_channels=1, **kw)
    assert (len(train), len(val)) == (24, 6)
    item = val[0]
    assert item["name"] == "24" and item["image"].shape == (1, 512, 512)
    assert item["label"].unique().tolist() == [0, 1]


def _binary_pair(root, image_size, mask_size, mask_ext):
    (root / "image").mkdir(parents=True)
    (root / "label").mkdir(parents=True)
    mask = np.zeros(mask_size, np.uint8)
    mask[:, mask_size[1] // 2 :] = 255  # right half is class 1
    cv2.imwrite(str(root / "label" / f"0{mask_ext}"), mask)
    image = cv2.resize(mask, (image_size[1], image_size[0]), interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(root / "image" / "0.png"), image)
    return dict(image_dir="image", mask_dir="label", num_classes=2, in_channels=1)


def test_a_jpeg_mask_is_named_and_refused_unless_thresholded(tmp_path):
    kw = _binary_pair(tmp_path, (16, 20), (16, 20), ".jpg")
    with pytest.raises(FileNotFoundError, match=r"mask .*0\.jpg is a JPEG.*data\.mask_threshold"):
        PairedFolderDataset(tmp_path, "all", **kw)
    item = PairedFolderDataset(tmp_path, "all", mask_threshold=127, **kw)[0]
    label = item["label"].numpy()
    assert set(np.unique(label)) == {0, 1}
    assert (label[:, :9] == 0).all() and (label[:, 11:] == 1).all()  # away from the JPEG-blurred edge


def test_resize_to_mask_when_the_aspect_ratios_agree(tmp_path):
    kw = _binary_pair(tmp_path / "a", (32, 40), (16, 20), ".png")
    with pytest.raises(ValueError, match="is 16x20 but image"):
        PairedFolderDataset(tmp_path / "a", "all", binary_255=True, **kw)[0]
    item = PairedFolderDataset(tmp_path / "a", "all", binary_255=True, resize_to_mask=True, **kw)[0]
    assert item["image"].shape == (1, 16, 20) and item["label"].shape == (16, 20)
    kw = _binary_pair(tmp_path / "b", (32, 32), (16, 20), ".png")  # 1:1 image, 4:5 mask
    with pytest.raises(ValueError, match="aspect ratios differ"):
        PairedFolderDataset(tmp_path / "b", "all", binary_255=True, resize_to_mask=True, **kw)[0]
