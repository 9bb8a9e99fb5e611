"""Walks a /publicRooms listing page by page, forwards then back, and checks
that the tokens agree: used by the client directory tests and the federation
ones (where server ACLs hide some rooms from the asking server)."""


def check_paging(fetch, limit, expected):
    """fetch(since, limit) -> the answer's body (since None: the first page).
    expected: the room IDs the asker should see, in the server's order.
    Forwards: every page is full but maybe the last, none is empty, they
    hold expected in order, and the last has no next_batch. Back from each
    page's prev_batch: the page before it, whose next_batch leads to it
    again; the first page reached back has no prev_batch."""
    pages, tokens, since = [], [], None
    for _ in range(len(expected) + 2):
        body = fetch(since, limit)
        ids = [c["room_id"] for c in body["chunk"]]
        assert ids, ("an empty page", pages, body)
        pages.append(ids)
        tokens.append(body)
        since = body.get("next_batch")
        if not since:
            break
    assert [x for p in pages for x in p] == expected, pages
    assert all(len(p) == limit for p in pages[:-1]), pages
    assert "prev_batch" not in tokens[0], tokens[0]
    for i in range(len(pages) - 1, 0, -1):
        back = fetch(tokens[i]["prev_batch"], limit)
        assert [c["room_id"] for c in back["chunk"]] == pages[i - 1], (i, back, pages)
        assert ("prev_batch" in back) == (i > 1), (i, back, pages)
        again = fetch(back["next_batch"], limit)
        assert [c["room_id"] for c in again["chunk"]] == pages[i], (i, again, pages)
