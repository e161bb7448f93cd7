from jupyterlab_accel.handlers.terminals import already_delivered, overlap


def test_overlap_finds_the_replayed_part():
    assert overlap("abc$ ls\r\nfile\r\n", "ls\r\nfile\r\nnew") == len("ls\r\nfile\r\n")
    assert overlap("xyz", "abc") == 0
    assert overlap("", "abc") == 0
    assert overlap("aaaa", "aab") == 2


def test_a_replay_longer_than_the_tail():
    tail = "line9\r\nline10\r\n"
    replay = "line1\r\nline2\r\n" + tail + "line11\r\n"
    assert replay[already_delivered(tail, replay) :] == "line11\r\n"
    assert already_delivered(tail, "unrelated output") == 0
