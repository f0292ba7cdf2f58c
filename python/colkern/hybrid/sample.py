"""The bundled sample manual for the hybrid-index demo, and the command that regenerates it.

    python -m colkern.hybrid.sample python/colkern/hybrid/data/manual.pdf

Five A4 pages of a made-up service manual with the mix the hybrid index is for: a cover with a
photo of the unit, pages of prose (fuse, filter, troubleshooting), a wiring diagram drawn as
vector graphics and a specification table. The router sends the cover, the diagram and the
table to ColPali (when a ColPali model is given) and keeps the text layer of every page for the
text route. Everything is drawn by PyMuPDF and PIL from fixed values: the bytes depend only on
their versions.
"""
from __future__ import annotations

import io
import sys
from importlib import resources

from .._atomic import atomic_write_bytes

TITLE = "PX-200 Bench Power Supply: Service Manual"
PROSE = {
    "Replacing the fuse": (
        "Disconnect the mains cable before you open the unit. The fuse holder sits next to the mains socket on "
        "the rear panel. Turn the cap a quarter turn to the left, pull the fuse out and check it against the light: "
        "a blown fuse has a broken wire or a dark glass tube. Fit a new 3.15 A slow-blow fuse (5 x 20 mm) only; a "
        "stronger fuse does not protect the transformer. If the new fuse blows at once, do not fit a third one: "
        "the rectifier or the main board has a short circuit, see Troubleshooting."),
    "Cleaning the air filter": (
        "The fan draws air through a foam filter behind the side grille. A clogged filter lets the heat sink run "
        "hot and the unit limits its output current. Every three months, remove the two grille screws, take the "
        "filter out, rinse it under warm water with a drop of soap and let it dry completely before you put it "
        "back. Never run the unit without the filter: dust settles on the main board."),
    "Troubleshooting": (
        "No display and no fan: check the mains cable and the fuse. The display works but the output stays at zero "
        "volts: the output relay is off, press OUTPUT. The output voltage drops under load and the CC lamp lights: "
        "the current limit is set too low, turn the CURRENT knob to the right. The fan runs loud all the time: "
        "clean the air filter. A burning smell or a fuse that blows again at once: switch off, unplug the unit "
        "and send it for repair; the rectifier bridge or the main board is damaged."),
}
SPECS = [("Output voltage", "0 - 30 V DC"), ("Output current", "0 - 5 A"), ("Ripple and noise", "< 1 mV rms"),
         ("Mains input", "220 - 240 V AC, 50/60 Hz"), ("Fuse", "3.15 A slow-blow, 5 x 20 mm"),
         ("Weight", "4.2 kg"), ("Operating temperature", "0 - 40 degrees C")]
DIAGRAM = ["Mains input", "Fuse", "Transformer", "Rectifier", "Main board", "Output"]


def sample_manual_path() -> str:
    """The installed sample manual."""
    return str(resources.files("colkern.hybrid") / "data" / "manual.pdf")


def _photo() -> bytes:
    """A 'photo' of the unit: a shaded case with a display, two knobs and terminals (JPEG)."""
    from PIL import Image, ImageDraw, ImageFilter

    w, h = 640, 400
    im = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(im)
    for y in range(h):  # a bench top under a lamp: a vertical gradient
        g = int(200 - 90 * y / h)
        draw.line([(0, y), (w, y)], fill=(g, g - 10, g - 25))
    draw.rounded_rectangle((80, 60, 560, 340), radius=18, fill=(60, 64, 72), outline=(20, 20, 24), width=4)
    draw.rectangle((120, 100, 330, 170), fill=(20, 40, 25))
    draw.text((140, 120), "12.00 V  1.50 A", fill=(90, 255, 120))
    for cx in (400, 480):
        draw.ellipse((cx - 32, 104, cx + 32, 168), fill=(30, 30, 30), outline=(150, 150, 150), width=3)
    for cx, colour in ((160, (200, 30, 30)), (240, (20, 20, 20)), (320, (30, 150, 40))):
        draw.ellipse((cx - 18, 250, cx + 18, 286), fill=colour, outline=(220, 220, 220), width=2)
    im = im.filter(ImageFilter.GaussianBlur(1.2))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _heading(page, y: float, text: str) -> float:
    page.insert_text((56, y), text, fontsize=15, fontname="hebo")
    return y + 14


def _prose(page, y: float, heading: str) -> float:
    import pymupdf

    y = _heading(page, y, heading)
    rect = pymupdf.Rect(56, y, 540, y + 170)
    page.insert_textbox(rect, PROSE[heading], fontsize=11, fontname="helv", lineheight=1.3)
    return y + 190


def write_sample_manual(path: str) -> str:
    """Generates the sample manual at `path` (atomically) and returns the path."""
    import pymupdf

    doc = pymupdf.open()
    doc.set_metadata({"title": TITLE, "creator": "colkern.hybrid.sample", "producer": "PyMuPDF",
                      "creationDate": "D:20250101000000Z", "modDate": "D:20250101000000Z"})
    # 1: cover with a photo
    page = doc.new_page(width=595, height=842)
    page.insert_text((56, 90), TITLE, fontsize=20, fontname="hebo")
    page.insert_textbox(pymupdf.Rect(56, 110, 540, 200),
                        "This manual covers the PX-200 laboratory power supply: fuse and filter service, the wiring "
                        "of the main board power supply, the technical specifications and troubleshooting.",
                        fontsize=11, fontname="helv", lineheight=1.3)
    page.insert_image(pymupdf.Rect(56, 220, 540, 523), stream=_photo())
    page.insert_text((56, 545), "Figure 1: the PX-200 front panel with display, voltage and current knobs and the "
                                "output terminals.", fontsize=9, fontname="helv")
    # 2: prose
    page = doc.new_page(width=595, height=842)
    y = _prose(page, 80, "Replacing the fuse")
    _prose(page, y + 10, "Cleaning the air filter")
    # 3: wiring diagram, vector graphics
    page = doc.new_page(width=595, height=842)
    _heading(page, 80, "Wiring diagram: main board power supply")
    boxes = []
    for i, label in enumerate(DIAGRAM):
        col, row = i % 3, i // 3
        x0, y0 = 70 + 170 * col, 160 + 200 * row
        r = pymupdf.Rect(x0, y0, x0 + 120, y0 + 60)
        page.draw_rect(r, color=(0, 0, 0.5), fill=(0.85, 0.9, 1.0), width=1.5)
        page.insert_textbox(r + (6, 20, -6, 0), label, fontsize=10, fontname="helv", align=1)
        boxes.append(r)
    for a, b in zip(boxes, boxes[1:]):
        start = pymupdf.Point(a.x1, a.y0 + 30) if a.y0 == b.y0 else pymupdf.Point(a.x0 + 60, a.y1)
        end = pymupdf.Point(b.x0, b.y0 + 30) if a.y0 == b.y0 else pymupdf.Point(b.x0 + 60, b.y0)
        if a.y0 != b.y0:  # down and back to the first column
            mid = pymupdf.Point(a.x0 + 60, a.y1 + 60)
            page.draw_polyline([start, mid, pymupdf.Point(end.x, mid.y), end], color=(0.6, 0, 0), width=2)
        else:
            page.draw_line(start, end, color=(0.6, 0, 0), width=2)
    for i in range(12):  # ground rail and earth symbol
        page.draw_line((70 + 40 * i, 600), (90 + 40 * i, 600), color=(0, 0.4, 0), width=2)
    page.insert_text((70, 640), "Figure 2: mains input through the fuse and transformer to the rectifier and the main "
                                "board; the green rail is protective earth.", fontsize=9, fontname="helv")
    # 4: specification table
    page = doc.new_page(width=595, height=842)
    _heading(page, 80, "Technical specifications")
    top, row_h = 110, 30
    for i, (name, value) in enumerate([("Parameter", "Value")] + SPECS):
        y0 = top + i * row_h
        if i == 0:
            page.draw_rect(pymupdf.Rect(56, y0, 540, y0 + row_h), color=None, fill=(0.85, 0.85, 0.85))
        page.insert_text((64, y0 + 20), name, fontsize=11, fontname="hebo" if i == 0 else "helv")
        page.insert_text((300, y0 + 20), value, fontsize=11, fontname="hebo" if i == 0 else "helv")
    bottom = top + (len(SPECS) + 1) * row_h
    for i in range(len(SPECS) + 2):
        page.draw_line((56, top + i * row_h), (540, top + i * row_h), width=0.8)
    for x in (56, 292, 540):
        page.draw_line((x, top), (x, bottom), width=0.8)
    # 5: prose
    page = doc.new_page(width=595, height=842)
    _prose(page, 80, "Troubleshooting")
    data = doc.tobytes(garbage=4, deflate=True, no_new_id=True)  # no random file ID: same input, same bytes
    doc.close()
    return atomic_write_bytes(path, data)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m colkern.hybrid.sample OUT.pdf", file=sys.stderr)
        sys.exit(2)
    print(write_sample_manual(sys.argv[1]))
