/**
 * The canvas layers, stacked at image resolution and moved as one by a CSS transform:
 *
 *   image        the photo, drawn once
 *   mask         class colours; only the dirty rectangle of each edit is recoloured and put
 *   context      locked pixels dimmed (and, for read-only views, outlines), drawn once
 *   uncertainty  overlay: the model's heat map, drawn once when first shown, off by default
 *
 * Zooming and panning change one transform and repaint nothing; painting touches only the
 * mask layer's dirty rectangle, once per animation frame. Superpixel outlines are not in the
 * stack: `OutlineOverlay` draws them in screen pixels over it (outlines.ts).
 */
import { type Rect, isEmpty } from "./geometry";
import { packRgba } from "./colours";
import { type OutlineSource, drawOutlines } from "./outlines";
import type { QueriedRegions } from "./superpixels";
import type { View } from "./view";

/**
 * Outline colours by style (outlines.ts): none, locked (faint), asked and finished (quiet
 * green), asked with unlabeled pixels left (bright yellow, what still needs work).
 */
const OUTLINE_COLOURS = Uint32Array.from([
  0,
  packRgba(255, 255, 255, 80),
  packRgba(76, 195, 138, 210),
  packRgba(255, 214, 0, 255),
]);

function layer(name: string, width: number, height: number): HTMLCanvasElement {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.className = `layer layer-${name}`;
  canvas.dataset.layer = name;
  return canvas;
}

function context2d(canvas: HTMLCanvasElement): CanvasRenderingContext2D {
  const ctx = canvas.getContext("2d", { willReadFrequently: false });
  if (!ctx) throw new Error("this browser has no 2D canvas");
  return ctx;
}

export class LayerStack {
  readonly element: HTMLDivElement;
  readonly width: number;
  readonly height: number;
  private readonly imageLayer: HTMLCanvasElement;
  private readonly heatLayer: HTMLCanvasElement;
  private readonly maskLayer: HTMLCanvasElement;
  private readonly contextLayer: HTMLCanvasElement;
  private readonly maskCtx: CanvasRenderingContext2D;
  private readonly maskImage: ImageData;
  private readonly maskPixels: Uint32Array;
  private heatDrawn = false;

  constructor(width: number, height: number) {
    this.width = width;
    this.height = height;
    this.element = document.createElement("div");
    this.element.className = "layers";
    this.element.style.width = `${width}px`;
    this.element.style.height = `${height}px`;
    this.imageLayer = layer("image", width, height);
    this.heatLayer = layer("uncertainty", width, height);
    this.heatLayer.hidden = true;
    this.maskLayer = layer("mask", width, height);
    this.contextLayer = layer("context", width, height);
    this.element.append(this.imageLayer, this.maskLayer, this.contextLayer, this.heatLayer);
    this.maskCtx = context2d(this.maskLayer);
    this.maskImage = new ImageData(width, height);
    this.maskPixels = new Uint32Array(this.maskImage.data.buffer);
  }

  setView(view: View): void {
    this.element.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
    // Crisp pixels when zoomed in (that is where edges are refined); smooth when zoomed out.
    this.element.classList.toggle("pixelated", view.scale >= 2);
  }

  drawImage(source: CanvasImageSource): void {
    context2d(this.imageLayer).drawImage(source, 0, 0, this.width, this.height);
  }

  /** Recolours `rect` of the mask layer from `mask` through the class colour table. */
  paintMask(mask: Uint8Array, lut: Uint32Array, rect: Rect): void {
    if (isEmpty(rect)) return;
    const { width } = this;
    const pixels = this.maskPixels;
    for (let y = rect.y0; y < rect.y1; y++) {
      let index = y * width + rect.x0;
      const end = y * width + rect.x1;
      for (; index < end; index++) pixels[index] = lut[mask[index] as number] as number;
    }
    this.maskCtx.putImageData(
      this.maskImage,
      0,
      0,
      rect.x0,
      rect.y0,
      rect.x1 - rect.x0,
      rect.y1 - rect.y0,
    );
  }

  /**
   * Dims every locked pixel: one pass over the image, at load. With `outlines` (read-only
   * views such as review, which do not zoom) it also draws superpixel edges at image
   * resolution: asked superpixels bright, locked ones faint. The workspace draws its outlines
   * in screen pixels instead (`OutlineOverlay`).
   */
  drawContext(regions: QueriedRegions, { outlines = true }: { outlines?: boolean } = {}): void {
    const { width, height } = this;
    const image = new ImageData(width, height);
    const out = new Uint32Array(image.data.buffer);
    const dim = packRgba(8, 10, 20, 150);
    const { editable, labels } = regions;
    for (let y = 0, index = 0; y < height; y++) {
      for (let x = 0; x < width; x++, index++) {
        const locked = editable[index] === 0;
        if (outlines) {
          const label = labels[index];
          const edge =
            (x + 1 < width && labels[index + 1] !== label) ||
            (y + 1 < height && labels[index + width] !== label);
          if (edge) {
            out[index] = OUTLINE_COLOURS[locked ? 1 : 3] as number;
            continue;
          }
        }
        if (locked) out[index] = dim;
      }
    }
    context2d(this.contextLayer).putImageData(image, 0, 0);
  }

  /**
   * Draws the heat map once: `grey` (0..255, `width` x `height`) through `lut`, stretched to
   * the image if the worker stored it at another resolution.
   */
  drawUncertainty(grey: Uint8Array, width: number, height: number, lut: Uint32Array): void {
    const image = new ImageData(width, height);
    const out = new Uint32Array(image.data.buffer);
    for (let index = 0; index < out.length; index++) out[index] = lut[grey[index] as number] as number;
    const ctx = context2d(this.heatLayer);
    if (width === this.width && height === this.height) {
      ctx.putImageData(image, 0, 0);
    } else {
      const scratch = document.createElement("canvas");
      scratch.width = width;
      scratch.height = height;
      context2d(scratch).putImageData(image, 0, 0);
      ctx.drawImage(scratch, 0, 0, this.width, this.height);
    }
    this.heatDrawn = true;
  }

  get hasUncertainty(): boolean {
    return this.heatDrawn;
  }

  setUncertaintyVisible(visible: boolean): void {
    this.heatLayer.hidden = !visible;
  }

  setMaskOpacity(opacity: number): void {
    this.maskLayer.style.opacity = String(opacity);
  }

  setBoundariesVisible(visible: boolean): void {
    this.contextLayer.hidden = !visible;
  }
}

/**
 * The superpixel outlines, a canvas the size of the stage in CSS pixels over the layer stack:
 * redrawn when the view settles, the stage is resized or a superpixel's state changes, so
 * every line stays one CSS pixel wide at any zoom. While the view moves, `follow` carries the
 * last drawing along with a CSS transform (a redraw costs a pass over the stage's pixels).
 */
export class OutlineOverlay {
  readonly element: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D;
  private image: ImageData | null = null;
  private drawn: View | null = null;

  constructor(private readonly source: OutlineSource) {
    this.element = document.createElement("canvas");
    this.element.className = "outline-overlay";
    this.element.dataset.layer = "outlines";
    this.ctx = context2d(this.element);
  }

  /** Redraws for `view` on a stage `width` x `height` CSS pixels. */
  draw(view: View, width: number, height: number): void {
    const w = Math.max(1, Math.floor(width));
    const h = Math.max(1, Math.floor(height));
    if (!this.image || this.image.width !== w || this.image.height !== h) {
      this.element.width = w;
      this.element.height = h;
      this.element.style.width = `${w}px`;
      this.element.style.height = `${h}px`;
      this.image = new ImageData(w, h);
    }
    drawOutlines(new Uint32Array(this.image.data.buffer), w, h, view, this.source, OUTLINE_COLOURS);
    this.ctx.putImageData(this.image, 0, 0);
    this.drawn = { ...view };
    this.element.style.transform = "";
  }

  /** Moves and scales the last drawing to `view` without redrawing. */
  follow(view: View): void {
    const drawn = this.drawn;
    if (!drawn) return;
    const s = view.scale / drawn.scale;
    this.element.style.transform = `translate(${view.x - drawn.x * s}px, ${view.y - drawn.y * s}px) scale(${s})`;
  }

  setVisible(visible: boolean): void {
    this.element.hidden = !visible;
  }
}
