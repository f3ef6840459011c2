"""How a canvas is shown while it denoises: as text with every mask drawn as ░ (sample.py --show,
chat.py), and as an animated GIF (`python sample.py --gif docs/denoise.gif`), one frame a pass.
Pillow and the DejaVu Sans Mono font both come with matplotlib, so nothing new is installed."""
import os, sys, textwrap

WIDTH = 64  # characters per line of the GIF


def canvas_text(tok, ids, mask_id):
    """One canvas as text, each mask drawn as ░."""
    return "".join("░" if i == mask_id else tok.decode([i], skip_special_tokens=True) for i in ids)


class Recorder:
    """generate(..., on_step=Recorder(tok, show=True, gif="x.gif")): draws the first canvas after
    each pass (show: redrawn in place on a terminal) and keeps it as a frame for the GIF."""
    def __init__(self, tok, show=False, gif=None):
        self.tok, self.show, self.gif, self.frames = tok, show, gif, []

    def __call__(self, canvas):
        self.frames.append(canvas_text(self.tok, canvas[0].tolist(), self.tok.mask_token_id))
        if self.show:
            clear = "\033[2J\033[H" if sys.stdout.isatty() else ""
            print(clear + self.frames[-1] + "\n", flush=True)

    def save(self):
        if self.gif:
            save_gif(self.frames, self.gif)


def wrap(text, width=WIDTH):
    """The canvas text in lines of at most `width` characters, broken at spaces.
    >>> wrap("Tom had a ░░░ ball.", width=10)
    ['Tom had a', '░░░ ball.']"""
    return textwrap.wrap(text, width) or [""]


def save_gif(frames, path, ms_per_frame=60, hold_ms=3000, size=15):
    """frames: canvas texts, one per forward pass; masks grey, words black; the last one held."""
    from matplotlib import font_manager
    from PIL import Image, ImageDraw, ImageFont
    if not frames:
        raise ValueError("no frames to draw")
    font = ImageFont.truetype(font_manager.findfont("DejaVu Sans Mono"), size)
    char_w, line_h = font.getbbox("M")[2], int(size * 1.45)
    n_lines = max(len(wrap(f)) for f in frames)
    w, h = 2 * 12 + WIDTH * char_w, 2 * 10 + n_lines * line_h
    palette = [255, 255, 255, 30, 30, 30, 170, 170, 170] + [0] * (256 - 3) * 3
    images = []
    for text in frames:
        img = Image.new("P", (w, h), 0)
        img.putpalette(palette)
        draw = ImageDraw.Draw(img)
        for row, line in enumerate(wrap(text)):
            for col, c in enumerate(line):
                draw.text((12 + col * char_w, 10 + row * line_h), c, fill=2 if c == "░" else 1,
                          font=font)
        images.append(img)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    durations = [ms_per_frame] * (len(images) - 1) + [hold_ms]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0,
                   optimize=True)
