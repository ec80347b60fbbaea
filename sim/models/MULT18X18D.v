// The part of Lattice's ECP5 MULT18X18D that dyadic.hdl.multiplier uses, for simulation (the
// Yosys package ships only its black box): P = A * B (18 x 18 bits, signed where SIGNEDA,
// SIGNEDB), with the input, pipeline and output registers that the REG_*_CLK parameters switch
// on, all clocked by CLK0 and enabled by CE0, reset to zero by RST0 (synchronously). The C
// input, the shift and cascade ports and the other clocks are not modelled.
module MULT18X18D (
  input A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17,
  input B0, B1, B2, B3, B4, B5, B6, B7, B8, B9, B10, B11, B12, B13, B14, B15, B16, B17,
  input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB, CLK0, CE0, RST0,
  output P0, P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15, P16, P17, P18, P19, P20, P21, P22, P23, P24, P25, P26, P27, P28, P29, P30, P31, P32, P33, P34, P35
);
  parameter REG_INPUTA_CLK = "NONE";
  parameter REG_INPUTB_CLK = "NONE";
  parameter REG_PIPELINE_CLK = "NONE";
  parameter REG_OUTPUT_CLK = "NONE";
  parameter GSR = "ENABLED";

  wire [17:0] a_in = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
  wire [17:0] b_in = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
  reg [17:0] a_reg = 0, b_reg = 0;
  reg [35:0] pipe_reg = 0, out_reg = 0;
  wire [17:0] a = REG_INPUTA_CLK == "NONE" ? a_in : a_reg;
  wire [17:0] b = REG_INPUTB_CLK == "NONE" ? b_in : b_reg;
  wire signed [18:0] a_ext = {SIGNEDA & a[17], a};
  wire signed [18:0] b_ext = {SIGNEDB & b[17], b};
  wire signed [37:0] full = a_ext * b_ext;
  wire [35:0] product = full[35:0];
  wire [35:0] piped = REG_PIPELINE_CLK == "NONE" ? product : pipe_reg;
  wire [35:0] p = REG_OUTPUT_CLK == "NONE" ? piped : out_reg;
  always @(posedge CLK0) if (RST0) begin
    a_reg <= 0; b_reg <= 0; pipe_reg <= 0; out_reg <= 0;
  end else if (CE0) begin
    a_reg <= a_in; b_reg <= b_in; pipe_reg <= product; out_reg <= piped;
  end
  assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = p;
endmodule
