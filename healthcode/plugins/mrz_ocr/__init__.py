"""Reading machine-readable zones (MRZs) from document photos.

A plugin of its own: it implements ``healthcode_read_machine_zone`` and knows
no document kind. The candidate texts it returns go back to core, which asks
the document plugins (passport, hkmo_permit, ...) to parse each. The line
shapes and check-digit fields it reads by come from the one MRZ layout table,
``healthcode.core.mrz`` (``layouts`` is the reader's view of it).

Two readers, the cheap one first (``reader``):

* **OCR-B templates** (``template_reader``): long text bands are found with
  specks removed first, the zone's lines are measured around them at ICAO's
  line spacing (``locate.zone``), each line is cut at exactly the template
  pitch (pitch from the line's two ends, so perspective does not shift
  cells), and every cell is matched against the 37 glyphs rendered from the
  OCR-B font (``glyphs``). Each position takes the best glyph its field
  allows (digits in dates, letters or ``<`` in names and codes); a failing
  check digit may take a close runner-up only when exactly one variant makes
  it hold (``decode``). Tens of milliseconds; quarter turns are tried only
  when no MRZ-like zone is seen. Where they fail, a zone of two or three
  lines they saw is **rectified** (``locate.rectify``: the quadrilateral its
  first and last lines' ends make is mapped onto a rectangle by a
  homography, at one character height, contrast evened by CLAHE), which
  reads a page photographed at an angle, small in a large photo or under a
  coloured highlight; then the photo is read **descreened** (a slight blur
  takes out a photographed screen's moire). A reading whose checks hold but
  whose glyphs match OCR-B only loosely (another font) is **confirmed** by
  the second engine on the same zone, whose reading goes first where the
  two differ in a field no check digit covers.
* **Tesseract** (``tesseract``), only when the templates found no zone whose
  check digits hold, and raw passporteye only when no MRZ-like zone was seen
  at all (``engine``).

Raw ``passporteye.read_mrz`` finds the zone with a morphological filter and
hands the whole crop to tesseract. On OCR-B, tesseract's English LSTM model
reads the filler ``<`` as ``K`` (or splits one chevron into two characters),
so lines come out too long and fields shift. The tesseract reader keeps
tesseract for the letters and digits and adds what an MRZ's geometry gives
for free:

1. **Locate** the zone's text lines (``locate.lines``: black-hat filter,
   horizontal closing, connected components with their own orientation). The
   MRZ is the group of 1 to 3 long, parallel, evenly spaced lines of equal
   length.
2. **Straighten** each line on its own into a strip at a fixed character
   height, and stack the strips into one image: one tesseract run reads the
   whole zone, restricted to the MRZ alphabet, with per-character boxes.
3. **Fixed pitch** (``grid``): the glyph centres of a line lie on a regular
   grid, which gives the number of characters (30, 36 or 44: the layout) and
   the cell of every character tesseract returns. A filler chevron is
   recognised from its shape.
4. **Repairs the check digits confirm** (``repair``): look-alike letters and
   digits are changed only when the field's check digit then holds (and, for
   several possible changes, only one does); letters-only fields take the
   letter for a digit.
5. **Several attempts**, stopping at the first whose check digits all hold:
   contrast stretch, then binarised and larger, then the zone turned 180
   degrees.

6. **A second engine** (``ppocr``): PP-OCRv4's recogniser (onnxruntime, a
   pinned model file) reads the same strips where tesseract's first attempt
   fails; it knows fonts other than OCR-B.
7. **Engines as evidence** (``merge``): where no reading's check digits all
   hold, the characters the readings disagree on are the only ones a check
   digit may confirm a change of.

Then, for every reading, **constrained decoding** (``constrain``) of the
fields no check digit covers: document code, issuing state and nationality
(ICAO 9303 codes, each other's evidence), sex; each change is a note core
turns into a warning (``notices.repair_problems``). A reading whose number
has a filler inside it or whose states are no codes is never taken as
"checks hold" (its check digits then hold by chance).

Nothing here logs or puts into notes any character of the zone.
"""

from __future__ import annotations

from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import Image, MachineZoneReading


@hookimpl
def healthcode_read_machine_zone(image: Image) -> MachineZoneReading:
    # Imported here: numpy, scipy and the engine check are not paid by text input.
    from healthcode.plugins.mrz_ocr.reader import read_machine_zone

    return read_machine_zone(image)
