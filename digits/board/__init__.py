"""The drawing board: a local web page that reads what you draw, through digits.reading."""
