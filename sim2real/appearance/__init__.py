"""How renders look next to real frames: CIELAB class statistics (:mod:`.stats`) and fitting a
preset's colour and light ranges to real frames (:mod:`.calibrate`)."""
