"""Host side: golden models, the golden board, the protocol client and device driver, data
sets, training and the ``dyadic`` command line."""
