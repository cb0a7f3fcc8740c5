"""The tag vocabulary of reasoning traces, shared by the parser and the renderers.

Block tags delimit a span of the turn (GRIT, DeepEyes, InfiGUI-R1, UI-Ins and TON write these);
inline tags wrap one value and never hold a block (GS-Reasoner's 3D ``<bbox>``).
"""

BLOCK_TAGS = ("think", "rethink", "answer", "step", "action", "tool_call", "tool_response")
INLINE_TAGS = ("bbox",)  # GS-Reasoner's 3D box wrapper: counted, never a block
