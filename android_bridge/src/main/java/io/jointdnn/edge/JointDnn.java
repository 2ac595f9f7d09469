package io.jointdnn.edge;

import com.chaquo.python.PyException;
import com.chaquo.python.PyObject;
import com.chaquo.python.Python;

import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;

/**
 * Typed Java facade of the jointdnn-edge SDK on Android (Python module {@code jointdnn_edge.android},
 * run by Chaquopy).
 *
 * <pre>{@code
 * if (!Python.isStarted()) Python.start(new AndroidPlatform(context));
 * JointDnn sdk = JointDnn.create();
 * sdk.loadLookupTable(context.getAssets().open("alexnet.lut"));
 * Schedule s = sdk.decide(upMbps, downMbps);          // before every inference
 * for (Schedule.Segment run : s.runs) { ... }
 * }</pre>
 *
 * <p>Every method may throw {@link JointDnnException} (unchecked; a {@code PyException}), naming
 * the SDK's Python error class. Calls may come from any thread (Chaquopy serialises them on the Python GIL); run them
 * off the UI thread, since a plan or a cloud round trip can take milliseconds to seconds.
 */
public final class JointDnn {
    /** The Python module this facade wraps. */
    public static final String MODULE = "jointdnn_edge.android";
    /** Bridge calling conventions this facade was written for ({@code jointdnn_edge.android.API_VERSION}). */
    public static final int API_VERSION = 1;

    private final PyObject module;

    /** Wraps the module of an already started Python (see {@code Python.start}). */
    public static JointDnn create() {
        return new JointDnn(Python.getInstance().getModule(MODULE));
    }

    /**
     * Wraps a given {@code jointdnn_edge.android} module object; checks that its calling conventions
     * are the ones this facade expects (an app shipping mismatched Java and Python parts fails here).
     */
    public JointDnn(PyObject module) {
        this.module = module;
        int api = call("api_version").toInt();
        if (api != API_VERSION) {
            throw new IllegalStateException("jointdnn_edge.android speaks bridge API " + api
                    + " but this facade expects " + API_VERSION + ": ship matching versions");
        }
    }

    // ------------------------------------------------------------------ info

    /** SDK version, e.g. {@code "0.1.0"}. */
    public String version() {
        return call("version").toString();
    }

    /** True when the native (Rust) planner runs; false: the pure-Python fallback (same decisions, slower). */
    public boolean nativeAvailable() {
        return call("native_available").toBoolean();
    }

    /** Versions, which planner runs, whether numpy is installed, and the loaded tables. */
    public JSONObject info() {
        return object(call("info"));
    }

    // --------------------------------------------------------------- planner

    /** Loads a cost table file (JSON); returns its summary ({@code n}, {@code names}, {@code planner}, ...). */
    public JSONObject loadCosts(String path) {
        return object(call("load_costs", path));
    }

    /** Loads a cost table from its JSON text (e.g. read from an asset). */
    public JSONObject loadCostsJson(String json) {
        return object(call("load_costs_json", json));
    }

    /** Loads a lookup table file; its radio becomes the current one. Returns its summary. */
    public JSONObject loadLookupTable(String path) {
        return object(call("load_lookup_table", path));
    }

    /** Loads a lookup table from the file's bytes. */
    public JSONObject loadLookupTable(byte[] data) {
        return object(call("load_lookup_table_bytes", (Object) data));
    }

    /** Loads a lookup table from a stream, e.g. {@code context.getAssets().open("model.lut")}; closes it. */
    public JSONObject loadLookupTable(InputStream in) throws IOException {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buf = new byte[1 << 16];
            for (int k; (k = in.read(buf)) > 0; ) {
                out.write(buf, 0, k);
            }
            return loadLookupTable(out.toByteArray());
        } finally {
            in.close();
        }
    }

    /**
     * Sets planner defaults: {@code radio} ("3g", "4g", "wifi" or an object of {@code alpha_up,
     * alpha_down, beta, rtt_ms} and optionally {@code burst_up_bytes, burst_down_bytes}), {@code
     * objective}, {@code plan_options}. Returns the configuration.
     */
    public JSONObject configure(JSONObject options) {
        return object(call("configure", options.toString()));
    }

    /** The minimum-latency (or the table's objective) schedule at this bandwidth, in Mbit/s. */
    public Schedule decide(double upMbps, double downMbps) {
        return schedule(call("decide", upMbps, downMbps));
    }

    /**
     * The schedule under a mobile energy budget (mJ) and/or a latency deadline (ms); null leaves a
     * bound out (with a lookup table loaded: the table's own bound).
     */
    public Schedule decide(double upMbps, double downMbps, Double batteryMj, Double deadlineMs) {
        return schedule(call("decide", upMbps, downMbps, batteryMj, deadlineMs));
    }

    /**
     * Full form: also the current cloud slowdown (1 = as profiled) and the objective
     * ("latency", "energy", or null for the default).
     */
    public Schedule decide(double upMbps, double downMbps, Double batteryMj, Double deadlineMs,
                           double cloudSlowdown, String objective) {
        return schedule(call("decide", upMbps, downMbps, batteryMj, deadlineMs, cloudSlowdown, objective));
    }

    /**
     * As the full form, plus a bound on the time the cloud layers take, in ms after the slowdown
     * ({@code cloudBudgetMs}; null for none).
     */
    public Schedule decide(double upMbps, double downMbps, Double batteryMj, Double deadlineMs,
                           double cloudSlowdown, String objective, Double cloudBudgetMs) {
        return schedule(call("decide", upMbps, downMbps, batteryMj, deadlineMs, cloudSlowdown, objective,
                cloudBudgetMs));
    }

    /** Every {@code {first, last}} layer range the loaded lookup table's schedules run on the mobile. */
    public List<int[]> mobileRanges() {
        try {
            JSONArray a = new JSONArray(call("mobile_ranges").toString());
            List<int[]> out = new ArrayList<>(a.length());
            for (int i = 0; i < a.length(); i++) {
                JSONArray r = a.getJSONArray(i);
                out.add(new int[] {r.getInt(0), r.getInt(1)});
            }
            return out;
        } catch (JSONException e) {
            throw badReply("mobile_ranges", e);
        }
    }

    /** Builds a lookup table on the device (slow without the native planner; needs numpy). */
    public JSONObject buildLookupTable(String costsPath, String outPath, JSONObject options) {
        return object(call("build_lookup_table", costsPath, outPath, options == null ? null : options.toString()));
    }

    /** Forgets the loaded tables and configuration and closes every session. */
    public void reset() {
        call("reset");
    }

    // ----------------------------------------------------------------- codec

    /** Packs tensors into one activation frame (lossless, codec chosen per tensor). */
    public byte[] encodeFrame(List<Tensor> tensors) {
        return encodeFrame(tensors, "auto", null);
    }

    /** Packs tensors with a given codec ("auto", "raw", "zstd", "sparse", "png"), optionally quantized (bits). */
    public byte[] encodeFrame(List<Tensor> tensors, String codec, Integer quantizeBits) {
        return call("encode_frame", describe(tensors), buffers(tensors), codec, quantizeBits).toJava(byte[].class);
    }

    /** The tensors of a frame (at most 256 MiB decoded). */
    public List<Tensor> decodeFrame(byte[] frame) {
        return tensors("decode_frame", call("decode_frame", frame, null));
    }

    /** The tensors of a frame, refusing frames that decode to more than {@code maxBytes}. */
    public List<Tensor> decodeFrame(byte[] frame, long maxBytes) {
        return tensors("decode_frame", call("decode_frame", frame, maxBytes));
    }

    /** Per tensor: name, dtype, shape, codec, payload and raw sizes, without decoding. */
    public JSONArray frameInfo(byte[] frame) {
        try {
            return new JSONArray(call("frame_info", frame, null).toString());
        } catch (JSONException e) {
            throw badReply("frame_info", e);
        }
    }

    // -------------------------------------------------------------- sessions

    /**
     * Full mode: a split-inference session running {@code modelPath} (.tflite or .onnx) on the device
     * and the cloud server at {@code cloudUrl} (null: everything on the device). {@code options} (or
     * null): {@code token}, {@code timeout}, {@code costs}, {@code network}, {@code objective},
     * {@code deadline_ms}, {@code battery_mj}, {@code schedule}, ... (see
     * {@code jointdnn_edge.android.open_session}). Close it when done.
     */
    public Session openSession(String modelPath, String cloudUrl, JSONObject options) {
        int handle = call("open_session", modelPath, cloudUrl, options == null ? null : options.toString()).toInt();
        return new Session(this, handle);
    }

    /**
     * Plan-only mode: a client of the cloud server at {@code url} ({@code token}: bearer token or
     * null; {@code timeoutS}: the longest a request may take, null for 30 s). Close it when done.
     */
    public Cloud openCloud(String url, String token, Double timeoutS) {
        return new Cloud(this, call("open_cloud", url, token, timeoutS).toInt());
    }

    // -------------------------------------------------------------- plumbing

    /**
     * Calls a Python entry point, turning a Python error into {@link JointDnnException}.
     * (Never pass a lone {@code Object[]}/{@code byte[][]} as the only argument: Java would spread
     * it into several; cast it to {@code Object} as {@link #loadLookupTable(byte[])} shows for byte[].)
     */
    PyObject call(String name, Object... args) {
        try {
            return module.callAttr(name, args);
        } catch (PyException e) {
            throw JointDnnException.from(e, lastError());
        }
    }

    /** The failure just recorded on this thread by the Python side (JSON), or null. */
    private String lastError() {
        try {
            PyObject err = module.callAttr("last_error");
            return err == null ? null : err.toString();
        } catch (PyException ignored) {
            return null;
        }
    }

    static String describe(List<Tensor> tensors) {
        try {
            JSONArray meta = new JSONArray();
            for (Tensor t : tensors) {
                JSONArray shape = new JSONArray();
                for (long d : t.shape()) {
                    shape.put(d);
                }
                meta.put(new JSONObject().put("name", t.name()).put("dtype", t.dtype()).put("shape", shape));
            }
            return meta.toString();
        } catch (JSONException e) {
            throw new IllegalArgumentException("tensor metadata cannot be written as JSON", e);
        }
    }

    static byte[][] buffers(List<Tensor> tensors) {
        byte[][] out = new byte[tensors.size()][];
        for (int i = 0; i < out.length; i++) {
            out[i] = tensors.get(i).data();
        }
        return out;
    }

    /** {@code [metadata JSON, buffer, buffer, ...]} from Python as tensors. */
    static List<Tensor> tensors(String what, PyObject reply) {
        List<PyObject> parts = reply.asList();
        try {
            JSONArray meta = new JSONArray(parts.get(0).toString());
            List<Tensor> out = new ArrayList<>(meta.length());
            for (int i = 0; i < meta.length(); i++) {
                JSONObject m = meta.getJSONObject(i);
                JSONArray dims = m.getJSONArray("shape");
                long[] shape = new long[dims.length()];
                for (int k = 0; k < shape.length; k++) {
                    shape[k] = dims.getLong(k);
                }
                byte[] data = parts.get(i + 1).toJava(byte[].class);
                out.add(new Tensor(m.getString("name"), m.getString("dtype"), shape, data));
            }
            return out;
        } catch (JSONException e) {
            throw badReply(what, e);
        }
    }

    private static JSONObject object(PyObject reply) {
        try {
            return new JSONObject(reply.toString());
        } catch (JSONException e) {
            throw badReply("a call", e);
        }
    }

    private static Schedule schedule(PyObject reply) {
        try {
            return Schedule.fromJson(reply.toString());
        } catch (JSONException e) {
            throw badReply("decide", e);
        }
    }

    static IllegalStateException badReply(String what, JSONException e) {
        return new IllegalStateException("unexpected reply from " + MODULE + " to " + what
                + " (mismatched SDK and facade versions?)", e);
    }
}
