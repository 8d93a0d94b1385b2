from faceparse.core.wording import counted


def test_counts_take_the_noun_in_their_number():
    assert counted(1, "image") == "1 image"
    assert counted(0, "image") == "0 images"
    assert counted(12_345, "photo") == "12,345 photos"
    assert counted(2, "face crop") == "2 face crops"
    assert counted(1, "entry", "entries") == "1 entry" and counted(3, "entry", "entries") == "3 entries"
