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
 *
 * Large images (viewport.ts, over 4 Mpx) get `ViewportLayers` instead: the same four layers
 * as stage-sized canvases holding only what is on screen, redrawn when the view moves.
 */
import { type Rect, isEmpty } from "./geometry";
import { packRgba } from "./colours";
import { type OutlineSource, drawOutlines } from "./outlines";
import type { QueriedRegions } from "./superpixels";
import type { View } from "./view";
import { previewSize, sampleToScreen, screenRect, screenSampling } from "./viewport";

/** What the workspace draws through: `LayerStack` or, for large images, `ViewportLayers`. */
export interface Layers {
  readonly element: HTMLElement;
  /** The stage is now `width` x `height` CSS pixels. */
  resize(width: number, height: number): void;
  setView(view: View): void;
  /**
   * The photo, stretched to the image's size if it is a downscaled copy; `preview` (such a
   * copy) is drawn instead while zoomed out far enough, if given.
   */
  drawImage(source: ImageBitmap, preview?: ImageBitmap): void;
  /** The mask's `rect` changed (or the view did: then the whole visible part is redrawn). */
  paintMask(mask: Uint8Array, lut: Uint32Array, rect: Rect): void;
  drawContext(regions: QueriedRegions, options?: { outlines?: boolean }): void;
  drawUncertainty(grey: Uint8Array, width: number, height: number, lut: Uint32Array): void;
  readonly hasUncertainty: boolean;
  setUncertaintyVisible(visible: boolean): void;
  setMaskOpacity(opacity: number): void;
  setBoundariesVisible(visible: boolean): void;
}

/** Locked pixels are dimmed by this colour over the photo and mask. */
const LOCKED_DIM = packRgba(8, 10, 20, 150);

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

export class LayerStack implements Layers {
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
    // The image's on-screen box, for tests and benches that map image pixels to the screen.
    this.element.dataset.imageFrame = "";
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

  resize(): void {
    // The layers are image-sized and moved by setView: the stage's size does not matter.
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
    const dim = LOCKED_DIM;
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
 * The layers of a large image at screen resolution: four stage-sized canvases (photo, mask,
 * locked dimming, heat map) that hold only what is on screen. A moved view redraws them
 * (the photo with one `drawImage` from the full bitmap, or from its downscaled preview while
 * zoomed out; mask and dimming sampled per stage pixel, viewport.ts); a paint edit resamples
 * only the stage pixels over its dirty rectangle. Memory and work follow the stage's size,
 * not the image's: a 4000x3000 photo needs no 48 MB canvas per layer.
 *
 * `element` also holds an empty box of the image's size under the view's transform
 * (`data-image-frame`), so image pixels map to the screen as with `LayerStack`.
 */
export class ViewportLayers implements Layers {
  readonly element: HTMLDivElement;
  readonly width: number;
  readonly height: number;
  private readonly frame: HTMLDivElement;
  private readonly imageLayer: HTMLCanvasElement;
  private readonly maskLayer: HTMLCanvasElement;
  private readonly contextLayer: HTMLCanvasElement;
  private readonly heatLayer: HTMLCanvasElement;
  private source: ImageBitmap | null = null;
  private preview: ImageBitmap | null = null;
  private editable: Uint8Array | null = null;
  private heat: HTMLCanvasElement | null = null;
  private view: View = { scale: 1, x: 0, y: 0 };
  private stageWidth = 0;
  private stageHeight = 0;
  /** The view or stage changed since the last draw: everything is redrawn on the next paint. */
  private stale = true;
  private columns: Int32Array = new Int32Array(0);
  private rows: Int32Array = new Int32Array(0);
  private maskImage: ImageData | null = null;
  private maskPixels: Uint32Array = new Uint32Array(0);
  private contextImage: ImageData | null = null;
  private readonly contextLut = Uint32Array.from([LOCKED_DIM, 0]);

  constructor(width: number, height: number) {
    this.width = width;
    this.height = height;
    this.element = document.createElement("div");
    this.element.className = "viewport-layers";
    this.frame = document.createElement("div");
    this.frame.className = "image-frame";
    this.frame.dataset.imageFrame = "";
    this.frame.style.width = `${width}px`;
    this.frame.style.height = `${height}px`;
    this.imageLayer = layer("image", 0, 0);
    this.maskLayer = layer("mask", 0, 0);
    this.contextLayer = layer("context", 0, 0);
    this.heatLayer = layer("uncertainty", 0, 0);
    this.heatLayer.hidden = true;
    this.element.append(this.imageLayer, this.maskLayer, this.contextLayer, this.heatLayer, this.frame);
  }

  resize(width: number, height: number): void {
    const w = Math.max(1, Math.floor(width));
    const h = Math.max(1, Math.floor(height));
    if (w === this.stageWidth && h === this.stageHeight) return;
    this.stageWidth = w;
    this.stageHeight = h;
    for (const canvas of [this.imageLayer, this.maskLayer, this.contextLayer, this.heatLayer]) {
      canvas.width = w;
      canvas.height = h;
      canvas.style.width = `${w}px`;
      canvas.style.height = `${h}px`;
    }
    this.maskImage = new ImageData(w, h);
    this.maskPixels = new Uint32Array(this.maskImage.data.buffer);
    this.contextImage = new ImageData(w, h);
    this.stale = true;
  }

  setView(view: View): void {
    this.view = { ...view };
    this.frame.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
    this.stale = true;
  }

  drawImage(source: ImageBitmap, preview?: ImageBitmap): void {
    this.source = source;
    this.preview = preview ?? null;
    this.stale = true;
  }

  drawContext(regions: QueriedRegions): void {
    this.editable = regions.editable;
    this.stale = true;
  }

  paintMask(mask: Uint8Array, lut: Uint32Array, rect: Rect): void {
    if (this.stageWidth === 0 || !this.maskImage) return;
    if (this.stale) {
      this.redraw(mask, lut);
      return;
    }
    if (isEmpty(rect)) return;
    const screen = screenRect(rect, this.view, this.stageWidth, this.stageHeight);
    if (isEmpty(screen)) return;
    sampleToScreen(this.maskPixels, this.stageWidth, screen, this.columns, this.rows, mask, this.width, lut);
    const ctx = context2d(this.maskLayer);
    ctx.putImageData(this.maskImage, 0, 0, screen.x0, screen.y0, screen.x1 - screen.x0, screen.y1 - screen.y0);
  }

  /** Everything on screen, for the current view and stage. */
  private redraw(mask: Uint8Array, lut: Uint32Array): void {
    const image = this.maskImage;
    if (!image) return;
    this.stale = false;
    const { stageWidth: w, stageHeight: h, view } = this;
    ({ columns: this.columns, rows: this.rows } = screenSampling(view, w, h, this.width, this.height));
    const all = { x0: 0, y0: 0, x1: w, y1: h };
    sampleToScreen(this.maskPixels, w, all, this.columns, this.rows, mask, this.width, lut);
    context2d(this.maskLayer).putImageData(image, 0, 0);
    const dimmed = this.contextImage;
    if (this.editable && dimmed) {
      const out = new Uint32Array(dimmed.data.buffer);
      sampleToScreen(out, w, all, this.columns, this.rows, this.editable, this.width, this.contextLut);
      context2d(this.contextLayer).putImageData(dimmed, 0, 0);
    }
    this.drawPhoto();
    this.drawHeat();
  }

  private drawPhoto(): void {
    const source = this.source;
    if (!source) return;
    const ctx = context2d(this.imageLayer);
    const { scale, x, y } = this.view;
    ctx.clearRect(0, 0, this.stageWidth, this.stageHeight);
    // Crisp pixels when zoomed in (where edges are refined), as LayerStack's `pixelated`.
    ctx.imageSmoothingEnabled = scale < 2;
    ctx.imageSmoothingQuality = "low";
    // Zoomed out past the preview's own resolution, the preview shows as much detail.
    const preview = this.preview;
    const drawn = preview && this.width * scale <= preview.width ? preview : source;
    ctx.drawImage(drawn, 0, 0, drawn.width, drawn.height, x, y, this.width * scale, this.height * scale);
  }

  drawUncertainty(grey: Uint8Array, width: number, height: number, lut: Uint32Array): void {
    // Kept at the preview's resolution at most: the heat map is smooth, and drawn scaled.
    const size = previewSize(width, height);
    const image = new ImageData(size.width, size.height);
    const out = new Uint32Array(image.data.buffer);
    for (let y = 0, index = 0; y < size.height; y++) {
      const row = Math.floor(((y + 0.5) * height) / size.height) * width;
      for (let x = 0; x < size.width; x++, index++) {
        out[index] = lut[grey[row + Math.floor(((x + 0.5) * width) / size.width)] as number] as number;
      }
    }
    const heat = document.createElement("canvas");
    heat.width = size.width;
    heat.height = size.height;
    context2d(heat).putImageData(image, 0, 0);
    this.heat = heat;
    this.drawHeat();
  }

  private drawHeat(): void {
    const heat = this.heat;
    if (!heat || this.heatLayer.hidden) return;
    const ctx = context2d(this.heatLayer);
    const { scale, x, y } = this.view;
    ctx.clearRect(0, 0, this.stageWidth, this.stageHeight);
    ctx.drawImage(heat, 0, 0, heat.width, heat.height, x, y, this.width * scale, this.height * scale);
  }

  get hasUncertainty(): boolean {
    return this.heat !== null;
  }

  setUncertaintyVisible(visible: boolean): void {
    this.heatLayer.hidden = !visible;
    this.drawHeat();
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
