"""Atomic writers, the streaming NIfTI reader and confounds tables (sparseconn.io)."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from sparseconn.errors import InputError
from sparseconn.io import (
    atomic_output,
    iter_volume_chunks,
    read_confounds,
    read_func_info,
    write_tsv,
)
from tests.helpers import make_func, write_table


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.tsv"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_never_replaces_a_complete_file_on_failure(tmp_path):
    target = tmp_path / "out.tsv"
    write_tsv(pd.DataFrame({"a": [1.0]}), target)
    before = target.read_bytes()
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.tsv"]


@pytest.mark.parametrize("dtype", ["float32", "int16"])
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_streaming_reader_equals_nibabel(tmp_path, rng, dtype, suffix):
    path = tmp_path / f"func{suffix}"
    data = make_func(path, rng, dtype=dtype, n_volumes=23)
    info = read_func_info(path)
    assert info.shape == data.shape and info.t_r == 2.5
    chunks = [info.to_float(raw) for _, raw in iter_volume_chunks(info, 5)]
    streamed = np.concatenate(chunks)
    np.testing.assert_array_equal(streamed, data.reshape(-1, 23, order="F").T)


@pytest.mark.parametrize(
    ("unit", "pixdim", "t_r", "unitless"),
    [
        ("unknown", 1.0, None, 1.0),  # nibabel's default header: no TR stated
        ("unknown", 2.0, None, 2.0),
        ("sec", 2.0, 2.0, None),
        ("msec", 2000.0, 2.0, None),
        ("usec", 2.5e6, 2.5, None),
    ],
)
def test_time_unit_decides_whether_the_header_states_a_t_r(
    tmp_path, rng, unit, pixdim, t_r, unitless
):
    path = tmp_path / "func.nii.gz"
    make_func(path, rng, n_volumes=5, t_r=None)
    image = nib.load(path)
    image.header.set_xyzt_units("mm", unit)
    image.header["pixdim"][4] = pixdim
    nib.save(nib.Nifti1Image(image.get_fdata(), image.affine, image.header), path)
    info = read_func_info(path)
    assert info.t_r == t_r
    assert info.unitless_t_r == unitless


def test_scaled_int16_is_converted_like_nibabel(tmp_path, rng):
    data = rng.uniform(-3, 3, (4, 5, 6, 7))
    image = nib.Nifti1Image(data, np.eye(4))
    image.set_data_dtype(np.int16)  # nibabel picks a slope and intercept
    nib.save(image, tmp_path / "f.nii.gz")
    info = read_func_info(tmp_path / "f.nii.gz")
    assert info.slope != 1.0
    streamed = np.concatenate([info.to_float(r) for _, r in iter_volume_chunks(info)])
    expected = nib.load(tmp_path / "f.nii.gz").get_fdata()
    np.testing.assert_allclose(
        streamed, expected.reshape(-1, 7, order="F").T, rtol=1e-6
    )


def test_truncated_gzip_is_a_clear_error(tmp_path, rng):
    path = tmp_path / "func.nii.gz"
    make_func(path, rng, n_volumes=20)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    info = read_func_info(path)
    with pytest.raises(InputError, match="truncated"):
        for _ in iter_volume_chunks(info):
            pass


def test_truncated_uncompressed_is_a_clear_error(tmp_path, rng):
    path = tmp_path / "func.nii"
    make_func(path, rng, n_volumes=20)
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(InputError, match=r"truncated.*of the 20"):
        for _ in iter_volume_chunks(read_func_info(path)):
            pass


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a readable NIfTI"),
        (b"this is not an image", "not a readable NIfTI"),
        (gzip.compress(b"x" * 10), "not a readable NIfTI"),
    ],
)
def test_unreadable_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "func.nii.gz"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as caught:
        read_func_info(path)
    assert str(path) in str(caught.value)


def test_3d_image_is_rejected(tmp_path):
    path = tmp_path / "anat.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), path)
    with pytest.raises(InputError, match=r"3D image.*4D time series is required"):
        read_func_info(path)


def test_missing_file_is_rejected(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_func_info(tmp_path / "nope.nii.gz")


def test_read_confounds_with_and_without_header(tmp_path, rng):
    values = rng.standard_normal((6, 3))
    frame = pd.DataFrame(values, columns=["a", "b", "c"])
    with_header = read_confounds(write_table(tmp_path / "h.tsv", frame), 6)
    assert list(with_header.columns) == ["a", "b", "c"]
    np.testing.assert_allclose(with_header.to_numpy(), values)
    plain = tmp_path / "plain.csv"
    np.savetxt(plain, values, delimiter=",")
    without = read_confounds(plain, 6)
    assert list(without.columns) == ["confound_01", "confound_02", "confound_03"]
    np.testing.assert_allclose(without.to_numpy(), values)


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (["1", "2", "x", "4"], "non-numeric value 'x' in column 'b' at data row 3"),
        (["1", "nan", "3", "4"], "NaN or infinite value 'nan' in column 'b'"),
        (["1", "2", "inf", "4"], "NaN or infinite value 'inf'"),
    ],
)
def test_read_confounds_rejects_bad_cells(tmp_path, cells, message):
    frame = pd.DataFrame({"a": ["0"] * 4, "b": cells})
    path = write_table(tmp_path / "c.tsv", frame)
    with pytest.raises(InputError, match=message) as caught:
        read_confounds(path, 4)
    assert str(caught.value).startswith(str(path))


def test_read_confounds_rejects_wrong_row_count(tmp_path):
    path = write_table(tmp_path / "c.tsv", pd.DataFrame({"a": [1.0, 2.0, 3.0]}))
    with pytest.raises(InputError, match=r"3 rows of confounds but .* 5 volumes"):
        read_confounds(path, 5)


def test_each_of_n_buffers_chunks_stays_valid_until_that_many_more_are_read(
    tmp_path, rng
):
    path = tmp_path / "func.nii.gz"
    data = make_func(path, rng, dtype="int16", n_volumes=11)
    expected = data.reshape(-1, 11, order="F").T
    info = read_func_info(path)
    held = []
    for start, raw in iter_volume_chunks(info, 2, n_buffers=3):
        held.append((start, raw))
        # the chunk read two chunks ago is still intact
        for old_start, old_raw in held[-3:]:
            np.testing.assert_array_equal(
                old_raw, expected[old_start : old_start + len(old_raw)]
            )
    assert len(held) == 6


@pytest.mark.parametrize(
    ("dtype", "slope", "inter"),
    [
        ("int16", 1.0, 0.0),
        ("uint8", 1.0, 0.0),
        ("int16", 0.37, -12.5),
        ("int32", 1.0, 0.0),  # rounded to float32 first, like to_float
        ("float32", 1.0, 0.0),
        ("float32", 2.0, 1.0),
        ("float64", 1.0, 0.0),
    ],
)
def test_to_float64_equals_to_float_cast_to_float64(tmp_path, rng, dtype, slope, inter):
    path = tmp_path / "func.nii"
    values = rng.integers(0, 200, (4, 5, 6, 3)) * (1 if dtype != "int32" else 99991)
    image = nib.Nifti1Image(values.astype(dtype), np.eye(4))
    image.header.set_slope_inter(slope, inter)
    nib.save(image, path)
    info = read_func_info(path)
    for _, raw in iter_volume_chunks(info):
        out = np.empty(raw.shape)
        info.to_float64(raw, out=out)
        np.testing.assert_array_equal(out, info.to_float(raw).astype(np.float64))


def test_a_gzip_file_of_several_members_streams_like_nibabel(tmp_path, rng):
    plain = tmp_path / "func.nii"
    make_func(plain, rng, dtype="int16", n_volumes=9)
    data = np.asarray(nib.load(plain).dataobj)
    content = plain.read_bytes()
    cut = len(content) // 3
    path = tmp_path / "func.nii.gz"
    path.write_bytes(gzip.compress(content[:cut]) + gzip.compress(content[cut:]))
    info = read_func_info(path)
    streamed = np.concatenate([raw.copy() for _, raw in iter_volume_chunks(info, 2)])
    np.testing.assert_array_equal(streamed, data.reshape(-1, 9, order="F").T)


def test_corrupt_gzip_data_is_a_clear_error(tmp_path, rng):
    path = tmp_path / "func.nii.gz"
    make_func(path, rng, n_volumes=20)
    content = bytearray(path.read_bytes())
    content[len(content) // 2 : len(content) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(content))
    with pytest.raises(InputError, match="corrupt compressed data"):
        for _ in iter_volume_chunks(read_func_info(path)):
            pass


@pytest.mark.parametrize("tail", [bytes(512), b"not gzip at all"])
def test_bytes_after_the_compressed_data_are_ignored_like_nibabel_does(
    tmp_path, rng, tail
):
    path = tmp_path / "func.nii.gz"
    make_func(path, rng, dtype="int16", n_volumes=7)
    expected = np.asarray(nib.load(path).dataobj)
    path.write_bytes(path.read_bytes() + tail)
    info = read_func_info(path)
    streamed = np.concatenate([raw.copy() for _, raw in iter_volume_chunks(info, 2)])
    np.testing.assert_array_equal(streamed, expected.reshape(-1, 7, order="F").T)
