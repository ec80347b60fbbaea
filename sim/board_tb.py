"""cocotb side of the simulated board: pump bytes between a pseudo-terminal and the
accelerator's ``rx``/``tx`` streams (see :mod:`.board`).

Bytes move one per clock cycle in each direction while there is traffic. ``tx.ready`` is high
only on cycles this loop watches, so nothing the device sends can be missed. While a long
command runs the simulator runs freely until ``busy`` falls; while the device executes a
request without traffic the loop steps a few cycles at a time; only when the device is
``idle`` does it wait for the host in ``select``.
"""

import errno
import os
import select
import tty

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ClockCycles

QUIET_CYCLES = 16


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@cocotb.test()
async def serve(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.rx__valid.value = 0
    dut.rx__payload.value = 0
    dut.tx__ready.value = 0
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst.value = 0

    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    ready = os.environ["DYADIC_READY"]
    with open(ready + ".tmp", "w") as f:
        f.write(os.ttyname(slave))
    os.replace(ready + ".tmp", ready)
    parent = int(os.environ.get("DYADIC_PARENT", "0"))

    pending, out = bytearray(), bytearray()
    quiet = 0

    def take_host_bytes(wait):
        if wait:
            select.select([master], [], [], wait)
        try:
            pending.extend(os.read(master, 1 << 16))
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EIO):  # EIO: nobody has the pty open yet
                raise

    while True:
        await FallingEdge(dut.clk)
        sending = int(dut.tx__valid.value)
        if sending:
            out.append(int(dut.tx__payload.value))  # transferred at the coming rising edge
        dut.tx__ready.value = sending
        if pending:
            dut.rx__payload.value = pending[0]
            dut.rx__valid.value = 1
            if int(dut.rx__ready.value):
                del pending[0]
        else:
            dut.rx__valid.value = 0
        if out and (len(out) >= 4096 or not sending):
            os.write(master, bytes(out))
            out.clear()
        quiet = 0 if (sending or pending) else quiet + 1
        if quiet < QUIET_CYCLES:
            if quiet == 0 and not pending:
                take_host_bytes(0)
            continue
        if int(dut.busy.value):
            await FallingEdge(dut.busy)  # a long command runs without this loop in the way
            quiet = 0
        elif not int(dut.idle.value):
            await ClockCycles(dut.clk, 8)  # executing a request; tx.ready is low meanwhile
        else:
            if parent and not _alive(parent):
                return  # the driver is gone
            take_host_bytes(0.2)
            if pending:
                quiet = 0
