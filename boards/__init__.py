"""Board wrappers, synthesis and programming (to come: see issue 5)."""
