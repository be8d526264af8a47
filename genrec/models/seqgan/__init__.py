"""The sequence family: a generator that reads each user's history in order (`seqgan`)."""
