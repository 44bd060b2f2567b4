"""Finding the machine-readable zone on a photo: the dark-text components
(``components``), the groups of lines the tesseract reader reads (``lines``)
and the measured lines the template reader reads (``zone``)."""
