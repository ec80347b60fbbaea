"""Command engine: the framed protocol of :mod:`.protocol` on a byte stream, executed against
the relaxation network's command stream and access bus.

The whole frame is buffered and checked (CRC, op, length, addresses, arguments) before anything
is executed, so a bad frame changes no state. While a frame executes and its reply is sent the
receive stream is not ready; the host waits for each reply before sending the next request.
"""

from amaranth import Module, Signal, Mux, Array, Const, Cat
from amaranth.lib import wiring, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .network import command_layout
from .pe import bits
from .protocol import (SYNC, ERROR, MAX_PAYLOAD, MAX_WRITE_WORDS, MAX_READ_WORDS, EXEC_BYTES,
                       Request, Error)
from .regmap import Space, Status, Op, col_bits

__all__ = ["CommandEngine", "crc16_byte"]


def crc16_byte(m, crc, byte, name):
    """CRC-16/CCITT-FALSE of one more byte: a Signal driven by 8 unrolled shift steps (each a
    named signal, so the expression does not double in size at every step)."""
    value = Signal(16, name=f"{name}_in")
    m.d.comb += value.eq(crc ^ Cat(Const(0, 8), byte))
    for k in range(8):
        step = Signal(16, name=f"{name}_{k}")
        m.d.comb += step.eq((value << 1)[:16] ^ Mux(value[15], 0x1021, 0))
        value = step
    return value


class CommandEngine(wiring.Component):
    """Protocol front end of a :class:`~.network.RelaxationNetwork`.

    Parameters
    ----------
    network : RelaxationNetwork
        The core it drives (for its configuration and sizes).
    info : bytes
        The INFO reply (JSON).
    timeout : int
        Clock cycles without a byte after which a partial frame is dropped.

    Attributes
    ----------
    rx : In(stream of 8 bits)  bytes from the host.
    tx : Out(stream of 8 bits) bytes to the host.
    cmd, addr, wdata, we, re, rdata, rvalid, busy : the network's interface, mirrored
        (replies are sent from ``rdata``, which holds each answer until the next read).
    idle : Out(1)  waiting for the first byte of a frame, nothing left to send.
    failed : Out(1)  the last reply was an error (a board shows it on a LED).
    """

    def __init__(self, network, info, timeout):
        self.network, self.info, self.timeout = network, bytes(info), timeout
        assert len(self.info) <= MAX_PAYLOAD
        super().__init__({
            "rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)),
            "cmd": Out(stream.Signature(command_layout)),
            "addr": Out(32), "wdata": Out(64), "we": Out(1), "re": Out(1),
            "rdata": In(64), "rvalid": In(1), "busy": In(1),
            "idle": Out(1), "failed": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        net = self.network
        cfg, L = net.cfg, net.cfg.L

        m.submodules.buffer = buffer = Memory(shape=8, depth=MAX_PAYLOAD, init=[])
        buf_wr, buf_rd = buffer.write_port(), buffer.read_port()
        m.submodules.info = info_rom = Memory(shape=8, depth=max(1, len(self.info)),
                                              init=list(self.info) or [0])
        info_rd = info_rom.read_port()
        info_byte = Signal(8)
        m.d.sync += info_byte.eq(info_rd.data)

        op = Signal(8)
        length = Signal(16)
        index = Signal(range(MAX_PAYLOAD + 1))
        crc = Signal(16, init=0xFFFF)
        received_crc = Signal(16)
        idle_cycles = Signal(range(self.timeout + 1))
        error = Signal(8)

        # -- transmitter: header, payload bytes from ``tx_byte``, CRC ------------------------
        tx_op = Signal(8)
        tx_len = Signal(16)
        tx_crc = Signal(16)
        tx_byte = Signal(8)
        tx_byte_valid = Signal()
        tx_byte_taken = Signal()
        tx_start = Signal()
        tx_done = Signal()
        tx_count = Signal(16)
        # the CRC takes in each byte the cycle after it is sent (off the byte's source paths);
        # every state after a byte lasts at least that cycle before the CRC is sent
        sent = Signal(8)
        sent_valid = Signal()
        tx_crc_next = crc16_byte(m, tx_crc, sent, "tx_crc")
        m.d.sync += sent_valid.eq(0)
        with m.If(sent_valid):
            m.d.sync += tx_crc.eq(tx_crc_next)
        # tx_count == tx_len, registered (off the paths from the replies' sources to the
        # receiver's state): the header's four bytes give it time to settle
        # (tx_count + 1 kept beside it: no carry chain after the handshake)
        payload_sent = Signal()
        tx_count_next = Signal(16)
        with m.If(tx_byte_taken):
            m.d.sync += payload_sent.eq(tx_count_next == tx_len)
        with m.Else():
            m.d.sync += payload_sent.eq(tx_count == tx_len)
        with m.FSM(name="transmit"):
            with m.State("IDLE"):
                m.d.comb += tx_done.eq(1)
                with m.If(tx_start):
                    m.d.comb += tx_done.eq(0)
                    m.d.sync += [tx_crc.eq(0xFFFF), tx_count.eq(0), tx_count_next.eq(1)]
                    m.next = "SYNC"
            for state, value, after in (("SYNC", SYNC, "OP"), ("OP", tx_op, "LEN0"),
                                        ("LEN0", tx_len[:8], "LEN1"),
                                        ("LEN1", tx_len[8:], "PAYLOAD")):
                with m.State(state):
                    m.d.comb += [self.tx.payload.eq(value), self.tx.valid.eq(1)]
                    with m.If(self.tx.ready):
                        if state != "SYNC":
                            m.d.sync += [sent.eq(value), sent_valid.eq(1)]
                        m.next = after
            with m.State("PAYLOAD"):
                with m.If(payload_sent):
                    m.next = "CRC0"
                with m.Else():
                    m.d.comb += [self.tx.payload.eq(tx_byte), self.tx.valid.eq(tx_byte_valid)]
                    with m.If(self.tx.ready & tx_byte_valid):
                        m.d.comb += tx_byte_taken.eq(1)
                        m.d.sync += [sent.eq(tx_byte), sent_valid.eq(1),
                                     tx_count.eq(tx_count_next),
                                     tx_count_next.eq(tx_count_next + 1)]
            with m.State("CRC0"):
                m.d.comb += [self.tx.payload.eq(tx_crc[:8]), self.tx.valid.eq(1)]
                with m.If(self.tx.ready):
                    m.next = "CRC1"
            with m.State("CRC1"):
                m.d.comb += [self.tx.payload.eq(tx_crc[8:]), self.tx.valid.eq(1)]
                with m.If(self.tx.ready):
                    m.next = "IDLE"

        # -- payload fields (little-endian, read from the buffer) -----------------------------
        address = Signal(32)
        count = Signal(16)
        space, layer, idx = address[24:28], address[20:24], address[:20]
        exec_fields = Signal(8 * EXEC_BYTES)

        # -- range checks ----------------------------------------------------------------------
        cb = col_bits(cfg)
        sizes = Array([Const(0, 16)] + [Const(n, 16) for n in cfg.sizes[1:]])
        rows = Array([Const(0, 16)] + [Const(cfg.row_length(l), 16) for l in range(1, L + 1)])
        # the sums, registered every cycle from ``address`` and ``count``: valid in
        # VALIDATE_RANGE, two cycles after VALIDATE sets them
        end = Signal(21)              # idx + count
        row_end = Signal(cb + 17)     # idx[:cb] + count
        m.d.sync += [end.eq(idx + count), row_end.eq(idx[:cb] + count)]
        layer_ok = (layer >= 1) & (layer <= L)
        layer_size = sizes[layer[:bits(L + 1)]]
        vector_ok = layer_ok & (end <= layer_size)
        row_ok = layer_ok & ((idx >> cb) < layer_size) & (row_end <= rows[layer[:bits(L + 1)]])
        range_ok = Signal()
        writable = Signal()
        with m.Switch(space):
            with m.Case(Space.A, Space.D, Space.LAM):
                m.d.comb += [range_ok.eq(vector_ok), writable.eq(1)]
            with m.Case(Space.W):
                m.d.comb += [range_ok.eq(row_ok), writable.eq(1)]
            with m.Case(Space.G):
                m.d.comb += range_ok.eq(row_ok)
            with m.Case(Space.X):
                m.d.comb += [range_ok.eq(end <= net.x_depth), writable.eq(1)]
            with m.Case(Space.Y):
                m.d.comb += [range_ok.eq(end <= net.y_depth), writable.eq(1)]
            with m.Case(Space.STATUS):
                m.d.comb += range_ok.eq(end <= len(Status))

        x = exec_fields
        e_op, e_count, e_sample, e_batch = x[0:8], x[8:24], x[24:40], x[40:56]
        e_h, e_lr, e_grad, e_seed = x[56:64], x[64:72], x[72:80], x[80:112]
        base = cfg.gradient_frac - cfg.master_format.frac_bits  # update shift = base + lr
        lr_ok = ((e_lr + base) >= 1) & ((e_lr + base) <= 32) & (e_lr < 32)
        exec_ok = Signal()
        write_ok = Signal()
        read_ok = Signal()
        exec_ok_r = Signal()
        rejected = Signal()
        # one flag per request, registered from ``op`` (which is stable after its byte)
        is_op = {r: Signal(name=f"is_{r.name.lower()}") for r in Request}
        m.d.sync += [flag.eq(op == r) for r, flag in is_op.items()]
        # count - 1, length - 1
        last_word = Signal(16)
        last_byte = Signal(16)
        fields_end = Signal(17)
        # the command's end sample, registered (the fields are complete from VALIDATE on, the
        # verdict is taken in VALIDATE_RANGE): the sum and the comparison are two paths
        exec_end = Signal(17)
        m.d.sync += exec_end.eq(e_sample + e_count)
        samples_ok = (e_count >= 1) & (exec_end <= net.samples) & (e_batch >= 1)
        with m.Switch(e_op):
            with m.Case(Op.RELAX):
                m.d.comb += exec_ok.eq((e_sample < net.samples) & (e_h <= 15) & (e_grad <= 1))
            with m.Case(Op.TRAIN):
                m.d.comb += exec_ok.eq(samples_ok & (e_batch <= cfg.max_batch) & lr_ok)
            with m.Case(Op.INFER):
                m.d.comb += exec_ok.eq(samples_ok)
            with m.Case(Op.UPDATE):
                m.d.comb += exec_ok.eq(lr_ok)
            with m.Case(Op.SEED, Op.CLEAR):
                m.d.comb += exec_ok.eq(1)
        p = self.cmd.payload
        m.d.comb += [p.op.eq(e_op[:3]), p.count.eq(e_count), p.sample.eq(e_sample),
                     p.batch.eq(e_batch), p.h_shift.eq(e_h[:4]), p.lr_shift.eq(e_lr[:5]),
                     p.gradient.eq(e_grad[0]), p.seed.eq(e_seed)]

        # -- receiver and executor -----------------------------------------------------------
        word = Signal(range(MAX_WRITE_WORDS + 1))
        byte_of_word = Signal(4)
        # word == last_word, registered (a 16-bit comparison before the reply's start and the
        # receiver's state): word changes at least two cycles before it is tested again
        at_last_word = Signal()
        m.d.sync += at_last_word.eq(word == last_word)
        m.d.comb += [buf_wr.data.eq(self.rx.payload), buf_wr.addr.eq(index),
                     info_rd.addr.eq(tx_count)]
        receiving = Signal()
        with m.If(receiving & ~self.rx.valid):
            m.d.sync += idle_cycles.eq(idle_cycles + 1)
        with m.Else():
            m.d.sync += idle_cycles.eq(0)

        def take_byte():
            m.d.comb += self.rx.ready.eq(1)
            return self.rx.valid

        rx_crc_next = crc16_byte(m, crc, self.rx.payload, "rx_crc")
        # the network's busy, registered: it is decoded from the controller's state, and the
        # reply logic after it is long; seen a cycle late, so a command waits a cycle first
        busy = Signal()
        m.d.sync += busy.eq(self.busy)
        with m.FSM(name="receive"):
            with m.State("HUNT"):
                m.d.comb += self.idle.eq(tx_done & ~busy)
                with m.If(take_byte() & (self.rx.payload == SYNC)):
                    m.d.sync += [crc.eq(0xFFFF), index.eq(0)]
                    m.next = "OP"
            for state, target, after in (("OP", op, "LEN0"), ("LEN0", length[:8], "LEN1"),
                                         ("LEN1", length[8:], "CHECK_LEN"),
                                         ("CRC0", received_crc[:8], "CRC1"),
                                         ("CRC1", received_crc[8:], "CHECK_CRC")):
                with m.State(state):
                    m.d.comb += receiving.eq(1)
                    with m.If(take_byte()):
                        m.d.sync += target.eq(self.rx.payload)
                        if not state.startswith("CRC"):
                            m.d.sync += crc.eq(rx_crc_next)
                        m.next = after
                    with m.If(idle_cycles == self.timeout):
                        m.d.sync += error.eq(Error.TIMEOUT)
                        m.next = "ERROR"
            with m.State("CHECK_LEN"):
                with m.If(length > MAX_PAYLOAD):
                    m.d.sync += error.eq(Error.BAD_LENGTH)
                    m.next = "ERROR"
                with m.Elif(length == 0):
                    m.next = "CRC0"
                with m.Else():
                    m.d.sync += last_byte.eq(length - 1)
                    m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += receiving.eq(1)
                with m.If(take_byte()):
                    m.d.comb += buf_wr.en.eq(1)
                    m.d.sync += [crc.eq(rx_crc_next), index.eq(index + 1)]
                    with m.If(index == last_byte):
                        m.next = "CRC0"
                with m.If(idle_cycles == self.timeout):
                    m.d.sync += error.eq(Error.TIMEOUT)
                    m.next = "ERROR"
            with m.State("CHECK_CRC"):
                with m.If(received_crc != crc):
                    m.d.sync += error.eq(Error.BAD_CRC)
                    m.next = "ERROR"
                with m.Else():
                    fixed = Mux(op == Request.EXEC, EXEC_BYTES, Mux(op == Request.READ, 6, 4))
                    # the fixed fields end at byte ``fixed`` or at the payload's end
                    m.d.sync += [index.eq(0),
                                 fields_end.eq(Mux(fixed <= length, fixed, length + 1))]
                    m.next = "FIELDS"
            # Gather the fixed fields: address and count, or the EXEC command.
            with m.State("FIELDS"):
                m.d.comb += buf_rd.addr.eq(index)
                m.d.sync += index.eq(index + 1)
                m.next = "FIELD_BYTE"
            with m.State("FIELD_BYTE"):
                m.d.sync += exec_fields.eq(Cat(exec_fields[8:], buf_rd.data))
                m.d.comb += buf_rd.addr.eq(index)
                with m.If(index == fields_end):  # byte index - 1 is being read
                    m.next = "VALIDATE"
                with m.Else():
                    m.d.sync += index.eq(index + 1)
            with m.State("VALIDATE"):
                # exec_fields holds the first bytes, shifted in from the top
                shift = Mux(op == Request.EXEC, 0, Mux(op == Request.READ,
                                                       8 * (EXEC_BYTES - 6),
                                                       8 * (EXEC_BYTES - 4)))
                aligned = (exec_fields >> shift)[:48]
                n_words = (length - 4) >> 2
                with m.Switch(op):
                    with m.Case(Request.INFO, Request.RESET):
                        m.d.sync += error.eq(Mux(length == 0, 0, Error.BAD_LENGTH))
                    with m.Case(Request.WRITE):
                        m.d.sync += [address.eq(aligned[:32]), count.eq(n_words)]
                        m.d.sync += error.eq(Mux((length < 8) | (length[:2] != 0)
                                                 | (n_words > MAX_WRITE_WORDS),
                                                 Error.BAD_LENGTH, 0))
                    with m.Case(Request.READ):
                        m.d.sync += [address.eq(aligned[:32]), count.eq(aligned[32:48])]
                        m.d.sync += error.eq(Mux(length != 6, Error.BAD_LENGTH, 0))
                    with m.Case(Request.EXEC):
                        m.d.sync += error.eq(Mux(length != EXEC_BYTES, Error.BAD_LENGTH, 0))
                    with m.Default():
                        m.d.sync += error.eq(Error.UNKNOWN_OP)
                m.next = "VALIDATE_SUMS"
            with m.State("VALIDATE_SUMS"):    # the sums above take in address and count
                m.next = "VALIDATE_RANGE"
            with m.State("VALIDATE_RANGE"):   # the range arithmetic gets a cycle of its own
                m.d.sync += [write_ok.eq(range_ok & writable),
                             read_ok.eq(range_ok & (count >= 1) & (count <= MAX_READ_WORDS)),
                             exec_ok_r.eq(exec_ok), last_word.eq(count - 1)]
                m.next = "VALIDATE_ARGS"
            with m.State("VALIDATE_ARGS"):
                # the verdict, registered: the dispatch below then branches on single bits
                bad_argument = ((is_op[Request.WRITE] & ~write_ok)
                                | (is_op[Request.READ] & ~read_ok)
                                | (is_op[Request.EXEC] & ~exec_ok_r))
                m.d.sync += rejected.eq((error != 0) | bad_argument)
                with m.If((error == 0) & bad_argument):
                    m.d.sync += error.eq(Error.BAD_ARGUMENT)
                m.next = "DISPATCH"
            with m.State("DISPATCH"):
                with m.If(rejected):
                    m.next = "ERROR"
                with m.Else():
                    m.d.sync += [word.eq(0), byte_of_word.eq(0), index.eq(4)]
                    with m.If(is_op[Request.INFO]):
                        m.d.comb += tx_start.eq(1)
                        m.d.sync += [tx_op.eq(op | 0x80), tx_len.eq(len(self.info))]
                        m.next = "INFO"
                    with m.If(is_op[Request.WRITE]):
                        m.next = "WRITE_FETCH"
                    with m.If(is_op[Request.READ]):
                        m.d.comb += tx_start.eq(1)
                        m.d.sync += [tx_op.eq(op | 0x80), tx_len.eq(count << 3)]
                        m.next = "READ_ISSUE"
                    with m.If(is_op[Request.EXEC]):
                        m.next = "EXEC"
                    with m.If(is_op[Request.RESET]):
                        m.d.sync += exec_fields[:8].eq(Op.CLEAR)
                        m.next = "EXEC"
            with m.State("INFO"):
                # the ROM answers one cycle after its address, registered once more (block
                # RAM is slow to its output): byte tx_count, two cycles after it is asked for
                m.d.comb += [tx_byte.eq(info_byte), tx_byte_valid.eq(1)]
                with m.If(tx_byte_taken):
                    m.next = "INFO_WAIT"
                with m.If(tx_done):
                    m.next = "HUNT"
            with m.State("INFO_WAIT"):
                m.next = "INFO_WAIT2"
            with m.State("INFO_WAIT2"):
                m.next = "INFO"
            with m.State("WRITE_FETCH"):
                m.d.comb += buf_rd.addr.eq(index)
                m.d.sync += index.eq(index + 1)
                m.next = "WRITE_BYTE"
            with m.State("WRITE_BYTE"):
                # the word's bytes shift in at the top of exec_fields (free once a
                # WRITE's address and count are taken from it)
                m.d.sync += [exec_fields.eq(Cat(exec_fields[8:], buf_rd.data)),
                             byte_of_word.eq(byte_of_word + 1)]
                with m.If(byte_of_word == 3):
                    m.next = "WRITE_WORD"
                with m.Else():
                    m.next = "WRITE_FETCH"
            with m.State("WRITE_WORD"):
                m.d.comb += [self.addr.eq(address + word), self.wdata.eq(exec_fields[-32:]),
                             self.we.eq(1)]
                m.d.sync += [word.eq(word + 1), byte_of_word.eq(0)]
                with m.If(at_last_word):
                    m.d.comb += tx_start.eq(1)
                    m.d.sync += [tx_op.eq(op | 0x80), tx_len.eq(0)]
                    m.next = "REPLY_WAIT"
                with m.Else():
                    m.next = "WRITE_FETCH"
            with m.State("READ_ISSUE"):
                m.d.comb += [self.addr.eq(address + word), self.re.eq(1)]
                m.next = "READ_WAIT"
            with m.State("READ_WAIT"):
                m.d.comb += self.addr.eq(address + word)
                with m.If(self.rvalid):
                    m.d.sync += byte_of_word.eq(0)
                    m.next = "READ_SEND"
            with m.State("READ_SEND"):   # the network holds ``rdata`` until the next read
                m.d.comb += [tx_byte.eq(self.rdata.word_select(byte_of_word[:3], 8)),
                             tx_byte_valid.eq(1)]
                with m.If(tx_byte_taken):
                    m.d.sync += byte_of_word.eq(byte_of_word + 1)
                    with m.If(byte_of_word == 7):
                        m.d.sync += word.eq(word + 1)
                        with m.If(at_last_word):
                            m.next = "REPLY_WAIT"
                        with m.Else():
                            m.next = "READ_ISSUE"
            with m.State("EXEC"):
                m.d.comb += self.cmd.valid.eq(1)
                with m.If(self.cmd.ready):
                    m.next = "EXEC_ACCEPTED"
            with m.State("EXEC_ACCEPTED"):   # the registered busy shows the command next cycle
                m.next = "EXEC_WAIT"
            with m.State("EXEC_WAIT"):
                with m.If(~busy):
                    m.d.comb += tx_start.eq(1)
                    m.d.sync += [tx_op.eq(op | 0x80), tx_len.eq(0)]
                    m.next = "REPLY_WAIT"
            with m.State("ERROR"):
                m.d.comb += tx_start.eq(1)
                m.d.sync += [tx_op.eq(ERROR), tx_len.eq(2), byte_of_word.eq(0)]
                m.next = "ERROR_SEND"
            with m.State("ERROR_SEND"):
                m.d.comb += [tx_byte.eq(Mux(byte_of_word == 0, error, op)), tx_byte_valid.eq(1)]
                with m.If(tx_byte_taken):
                    m.d.sync += byte_of_word.eq(byte_of_word + 1)
                    with m.If(byte_of_word == 1):
                        m.next = "REPLY_WAIT"
            with m.State("REPLY_WAIT"):
                with m.If(tx_done & ~tx_start):
                    m.d.sync += [error.eq(0), self.failed.eq(error != 0)]
                    m.next = "HUNT"
        return m
