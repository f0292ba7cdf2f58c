"""The training plans of benchmarks/quality_models.py (issue 14): per (engine, lang) the data
sets a run trains on and the held-out sets it is scored on, and the models shipped before each
run (which compete with the new ones on the training pages they never saw).

A plan names, per (engine, lang), the training and held-out data sets: directories under the
data root, built with `colkern quality build-dataset DIR --sources N --variants 5 --dpi 150
--timeout 40 --engines E --langs L --seed S`:

    set                 langs  engines              seed  sources
    eng-tess            eng    tesseract            14    } 75 together
    eng-train           eng    rapidocr,tesseract   12    }
    eng-heldout         eng    tesseract,rapidocr   13    20
    eng-heldout-rapid   eng    rapidocr,tesseract   17    40
    eng-rapid-train     eng    rapidocr,tesseract   21    60
    eng-rapid-train2    eng    rapidocr,tesseract   24    60
    eng-heldout-rapid2  eng    rapidocr,tesseract   22    40
    eng-heldout-rapid3  eng    rapidocr,tesseract   25    40   (built after the run: a second check)
    eng-camera          eng    tesseract,rapidocr   26    60   --capture camera
    eng-camera-heldout  eng    tesseract,rapidocr   28    30   --capture camera
    eng-camera2         eng    tesseract,rapidocr   32    40   --capture camera
    jpn-train           jpn    tesseract,rapidocr   10    32
    jpn-heldout         jpn    tesseract,rapidocr   11    15
    jpn-heldout2        jpn    tesseract,rapidocr   18    40
    jpn-train2          jpn    tesseract,rapidocr   19    60
    jpn-train3          jpn    tesseract,rapidocr   23    60
    jpn-heldout3        jpn    tesseract,rapidocr   20    40
    jpn-camera          jpn    tesseract,rapidocr   27    60   --capture camera
    jpn-camera-heldout  jpn    tesseract,rapidocr   29    30   --capture camera
    jpn-camera2         jpn    tesseract,rapidocr   33    40   --capture camera
    eng-scanner         eng    tesseract            42    60   --capture scanner
    jpn-scanner         jpn    tesseract            43    60   --capture scanner
    eng-scanner-heldout eng    tesseract            44    30   --capture scanner
    jpn-scanner-heldout jpn    tesseract            45    30   --capture scanner

Plans:
    first      the first run of issue 14 (benchmarks/results/quality-models): 32 Japanese sources.
    more-data  the Japanese and RapidOCR-English models retrained on every source that had been
               held out before (seeds 10, 13, 17, 18) plus new ones, and scored on sets of fresh
               seeds (20, 22) built after the plan was fixed.
    camera     every model retrained with pages seen through a scanner or phone camera (--capture
               camera: warp, skew, perspective, shadow, motion blur before the recipe) added to its
               more-data training sets (camera sets of seeds 26, 27, 32, 33); scored on the
               more-data held-out sets (unchanged, so the figures compare) and on camera held-out
               sets of fresh seeds (28, 29). Tesseract English, whose first training sets are
               gone, trains on the RapidOCR-English sets (all labelled by both engines) and is
               scored on RapidOCR English's held-out sets. Run again with --combos
               glyph+pixel+ppocr,glyph+pixel+ppocr+lines to test the line / lighting encoder.
    real       the camera plan plus real pages: per set, two pages of each of 15 English and 15
               Japanese documentation PDFs (other than the real-page evaluation's and the reserved
               ones), photographed (--capture camera, seeds 34, 35; 4 variants), damaged in place
               (seeds 36, 37; 2 variants) and scanned (--capture scanner, seeds 38, 39; 4 variants):
               `quality_real_pages.py build-train`. Same held-out sets as camera; the real-page
               evaluation (quality_real_pages.py evaluate) stays on PDFs no model saw.
    skew       the Tesseract models only, with the skew encoder (SkewPatchEncoder) among the
               combos: the real plan's sets plus generated scanner sets (seeds 42, 43; held out
               44, 45). Its data root was rebuilt with --engines tesseract for every set (and
               build-train --engines tesseract), so the sets listed above with RapidOCR first are
               steered by Tesseract's CER here: same seeds and source documents, other severities.
    border     the skew plan's sets, with the border encoder (BorderPatchEncoder: a scanner lid's or
               the desk's dark band along the page edges) added to the skew combination; the
               combination is computed from the cached skew one (EXTENDED), not encoded again.
    more-real  the border plan plus second draws of real training pages (quality_real_pages.py
               build-train --capture scanner2 / camera2: two more pages of each pool PDF, none
               that the first draws took; seeds 46-49), scanned and photographed.
    wide       the more-real plan plus real pages of a wider pool of PDFs (quality_real_pages.py
               WIDE_POOL: groff, asciidoc / dblatex, texinfo and LaTeX in other faces than
               Computer Modern, typewriter faces; 15 more Japanese TeX manuals), two pages per PDF
               scanned and two others photographed (build-train --capture wide-scanner /
               wide-camera, seeds 50-53).

"""
from __future__ import annotations

PLANS = {
    "first": {
        ("tesseract", "eng"): {"train": ["eng-tess", "eng-train"], "heldout": ["eng-heldout"]},
        ("tesseract", "jpn"): {"train": ["jpn-train"], "heldout": ["jpn-heldout"]},
        # RapidOCR labels were slow then (the builds got only a few dozen eng-train pages): the
        # English model also trains on the even-numbered sources of eng-heldout and is scored on
        # the odd ones (a split by source document: no held-out source is seen in training).
        ("rapidocr", "eng"): {"train": ["eng-train", "eng-heldout%even"], "heldout": ["eng-heldout%odd"]},
        ("rapidocr", "jpn"): {"train": ["jpn-train"], "heldout": ["jpn-heldout"]},
    },
    "more-data": {
        ("tesseract", "jpn"): {"train": ["jpn-train", "jpn-heldout2", "jpn-train2", "jpn-train3"],
                               "heldout": ["jpn-heldout3"]},
        ("rapidocr", "jpn"): {"train": ["jpn-train", "jpn-heldout2", "jpn-train2", "jpn-train3"],
                              "heldout": ["jpn-heldout3"]},
        ("rapidocr", "eng"): {"train": ["eng-heldout", "eng-heldout-rapid", "eng-rapid-train", "eng-rapid-train2"],
                              "heldout": ["eng-heldout-rapid2"]},
    },
    "camera": {
        ("tesseract", "eng"): {"train": ["eng-heldout", "eng-heldout-rapid", "eng-rapid-train", "eng-rapid-train2",
                                         "eng-camera", "eng-camera2"],
                               "heldout": ["eng-heldout-rapid2", "eng-heldout-rapid3", "eng-camera-heldout"]},
        ("tesseract", "jpn"): {"train": ["jpn-train", "jpn-heldout2", "jpn-train2", "jpn-train3", "jpn-camera",
                                         "jpn-camera2"],
                               "heldout": ["jpn-heldout3", "jpn-camera-heldout"]},
        ("rapidocr", "jpn"): {"train": ["jpn-train", "jpn-heldout2", "jpn-train2", "jpn-train3", "jpn-camera",
                                        "jpn-camera2"],
                              "heldout": ["jpn-heldout3", "jpn-camera-heldout"]},
        ("rapidocr", "eng"): {"train": ["eng-heldout", "eng-heldout-rapid", "eng-rapid-train", "eng-rapid-train2",
                                        "eng-camera", "eng-camera2"],
                              "heldout": ["eng-heldout-rapid2", "eng-heldout-rapid3", "eng-camera-heldout"]},
    },
}
# "real": the camera plan's sets plus real pages (benchmarks/quality_real_pages.py build-train: pages
# of other Debian documentation PDFs than the real-page evaluation's, under DATA/real/).
PLANS["real"] = {key: {"train": cfg["train"] + [f"real/realtrain-camera-{key[1]}", f"real/realtrain-{key[1]}",
                                                 f"real/realtrain-scanner-{key[1]}"],
                       "heldout": cfg["heldout"]}
                 for key, cfg in PLANS["camera"].items()}
# "skew": the Tesseract models, the real plan's sets plus generated scanner pages.
PLANS["skew"] = {key: {"train": cfg["train"] + [f"{key[1]}-scanner"],
                       "heldout": cfg["heldout"] + [f"{key[1]}-scanner-heldout"]}
                 for key, cfg in PLANS["real"].items() if key[0] == "tesseract"}
# "border": the skew plan's sets and models, with the border encoder (BorderPatchEncoder) among the combos.
PLANS["border"] = PLANS["skew"]
# "more-real": the border plan plus second draws of real training pages, scanned and photographed
# (quality_real_pages.py build-train --capture scanner2 / camera2: other pages of the same PDFs).
PLANS["more-real"] = {key: {"train": cfg["train"] + [f"real/realtrain-scanner2-{key[1]}", f"real/realtrain-camera2-{key[1]}"],
                            "heldout": cfg["heldout"]}
                      for key, cfg in PLANS["border"].items()}
# "wide": the more-real plan plus real pages of WIDE_POOL (quality_real_pages.py build-train --capture
# wide-scanner / wide-camera: PDFs of other typesetters and faces).
PLANS["wide"] = {key: {"train": cfg["train"] + [f"real/realtrain-wide-scanner-{key[1]}",
                                                 f"real/realtrain-wide-camera-{key[1]}"],
                       "heldout": cfg["heldout"]}
                 for key, cfg in PLANS["more-real"].items()}
DEFAULT_PLAN = "more-data"
# The models shipped before a plan's run (copies: the shipped files are overwritten by --ship),
# with the data sets each was trained on (left out where it is scored).
PREVIOUS = {
    "first": {("tesseract", "eng"): ("tesseract-eng.colq", []), ("rapidocr", "eng"): ("rapidocr-eng.colq", [])},
    "more-data": {("tesseract", "jpn"): ("tesseract-jpn.colq", ["jpn-train"]),
                  ("rapidocr", "jpn"): ("rapidocr-jpn.colq", ["jpn-train"]),
                  ("rapidocr", "eng"): ("rapidocr-eng.colq", ["eng-heldout"])},
    "camera": {("tesseract", "eng"): ("tesseract-eng.colq", []),
               ("tesseract", "jpn"): ("tesseract-jpn.colq", ["jpn-train", "jpn-heldout2", "jpn-train2", "jpn-train3"]),
               ("rapidocr", "jpn"): ("rapidocr-jpn.colq", ["jpn-train", "jpn-heldout2", "jpn-train2", "jpn-train3"]),
               ("rapidocr", "eng"): ("rapidocr-eng.colq", ["eng-heldout", "eng-heldout-rapid", "eng-rapid-train",
                                                           "eng-rapid-train2"])},
    # the camera plan's models: every generated training set seen, the real pages never
    "real": {key: (f"{key[0]}-{key[1]}.colq", cfg["train"]) for key, cfg in PLANS["camera"].items()},
    # the real plan's models: the generated scanner sets never seen
    "skew": {key: (f"{key[0]}-{key[1]}.colq", PLANS["real"][key]["train"]) for key in PLANS["skew"]},
    # the border plan's models: the second draws of real pages never seen
    "more-real": {key: (f"{key[0]}-{key[1]}.colq", PLANS["border"][key]["train"]) for key in PLANS["more-real"]},
    # the more-real plan's English model and the border plan's Japanese booster (shipped with the
    # calibration refitted on the second draws): WIDE_POOL's pages never seen
    "wide": {key: (f"{key[0]}-{key[1]}.colq", PLANS["more-real"][key]["train"]) for key in PLANS["wide"]},
}
