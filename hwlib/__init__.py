"""hwlib: arithmetic circuits in Amaranth, synthesis with Yosys, transistor counting."""
