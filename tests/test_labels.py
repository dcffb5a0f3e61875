from campaign.dataset.labels import parse_labels

IDENTITY = {0: 0, 1: 1, 2: 2}
NAMES = {0: "a", 1: "b", 2: "c"}


def parse(text, mapping=IDENTITY, size=(100, 100)):
    return parse_labels(text.encode(), mapping, NAMES, size, min_box_px=2)


def test_clean_lines_are_kept_unchanged():
    result = parse("0 0.500000 0.500000 0.200000 0.400000\n")
    assert [b.yolo_line() for b in result.boxes] == ["0 0.500000 0.500000 0.200000 0.400000"]
    assert result.fixes == [] and result.rejections == []


def test_crlf_bom_spaces_tabs_and_blank_lines_are_fixed():
    data = "\ufeff 1\t0.5  0.5 0.2 0.2 \r\n\r\n2 0.1 0.1 0.1 0.1\r\n"
    result = parse(data)
    assert [b.cls for b in result.boxes] == [1, 2]
    assert "CRLF line endings normalised" in result.fixes
    assert "byte-order mark removed" in result.fixes
    assert "1 blank line(s) removed" in result.fixes


def test_local_class_ids_are_mapped_and_dropped_or_unknown_classes_rejected():
    result = parse("0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n", mapping={0: 2, 1: None})
    assert [b.cls for b in result.boxes] == [2]
    assert any("'b' dropped (null in dataset.class_map)" in r for r in result.rejections)
    assert any("class id 7" in r for r in result.rejections)


def test_pixel_coordinates_are_normalised():
    result = parse("0 50 25 20 10\n", size=(100, 50))
    (box,) = result.boxes
    assert box.yolo_line() == "0 0.500000 0.500000 0.200000 0.200000"
    assert "pixel coordinates normalised" in result.fixes


def test_boxes_outside_are_clipped_and_degenerate_ones_dropped():
    result = parse("0 0.95 0.5 0.2 0.2\n0 0.5 0.5 0.0 0.3\n")
    (box,) = result.boxes
    assert box.x1 == 1.0 and abs(box.x0 - 0.85) < 1e-9
    assert any("clipped" in f for f in result.fixes)
    assert any("degenerate" in r for r in result.rejections)


def test_polygons_become_boxes_and_wrong_field_counts_are_rejected():
    result = parse("1 0.1 0.2 0.5 0.2 0.5 0.6 0.1 0.6\n1 0.5 0.5\n0 a b c d\n")
    (box,) = result.boxes
    assert box.yolo_line() == "1 0.300000 0.400000 0.400000 0.400000"
    assert any("line 2: 3 fields" in r for r in result.rejections)
    assert any("line 3: not numeric" in r for r in result.rejections)


def test_duplicate_boxes_are_removed():
    result = parse("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n")
    assert len(result.boxes) == 1
    assert any("duplicate" in f for f in result.fixes)
