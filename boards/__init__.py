"""Board wrappers, the resource check, synthesis and place and route, programming.

Every supported board is one module registering a :class:`~.board.Board`; importing the
package registers them all.
"""

from . import icebreaker, ulx3s  # noqa: F401  (register the boards)
from .board import BOARDS, Board, BoardError, get_board

__all__ = ["BOARDS", "Board", "BoardError", "get_board"]
