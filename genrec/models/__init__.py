"""Model families behind one contract (`base.Recommender`), registered in `families`."""
