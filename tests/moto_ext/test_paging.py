"""The bed's list pager in both of its cursor modes (see patches._page)."""

import os
import sys
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from moto_ext.patches import _page  # noqa: E402


def listing(items: list[str], size: int, change=None) -> list[str]:
    """Every page of a listing; `change(items)` runs between the first and second page."""
    seen: list[str] = []
    token = None
    first = True
    while True:
        page, token = _page(sorted(items), token, size)
        seen.extend(page)
        if first and change:
            change(items)
        first = False
        if token is None:
            return seen


class PagingTest(unittest.TestCase):
    names = [f"p{i:02}" for i in range(25)]

    def test_pages_cover_everything_once(self) -> None:
        for mode in ("name", "offset"):
            with mock.patch.dict(os.environ, {"BPL_MOTO_PAGE_CURSOR": mode}):
                self.assertEqual(listing(list(self.names), 10), self.names, mode)
                self.assertEqual(listing(list(self.names), 25), self.names, mode)
                self.assertEqual(listing([], 10), [], mode)

    def test_name_cursor_lists_every_item_present_throughout(self) -> None:
        with mock.patch.dict(os.environ, {"BPL_MOTO_PAGE_CURSOR": "name"}):
            seen = listing(list(self.names), 10, lambda items: items.extend(["a0", "a1"]))
        self.assertEqual(seen, self.names)

    def test_offset_cursor_repeats_on_inserts_and_skips_on_deletes(self) -> None:
        with mock.patch.dict(os.environ, {"BPL_MOTO_PAGE_CURSOR": "offset"}):
            grown = listing(list(self.names), 10, lambda items: items.extend(["a0", "a1"]))
            shrunk = listing(list(self.names), 10, lambda items: items.remove("p00"))
        # Two names sorted before the cursor push p08 and p09 onto the second page too.
        self.assertEqual(grown.count("p08"), 2)
        self.assertEqual(grown.count("p09"), 2)
        # One deletion before the cursor pulls p10 back onto the first page's span.
        self.assertNotIn("p10", shrunk)

    def test_name_cursor_survives_deletes(self) -> None:
        with mock.patch.dict(os.environ, {"BPL_MOTO_PAGE_CURSOR": "name"}):
            seen = listing(list(self.names), 10, lambda items: items.remove("p00"))
        self.assertEqual(seen, self.names)

    def test_keyed_items_page_by_their_name(self) -> None:
        items = [{"name": n} for n in self.names]
        page, token = _page(items, None, 10, key=lambda s: s["name"])
        self.assertEqual(page[-1]["name"], "p09")
        page, _ = _page(items, token, 10, key=lambda s: s["name"])
        self.assertEqual(page[0]["name"], "p10")


if __name__ == "__main__":
    unittest.main()
