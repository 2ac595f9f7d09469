package io.jointdnn.edge;

import com.chaquo.python.PyException;

import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * An error raised by the jointdnn-edge SDK, carrying the Python error class by name.
 *
 * <p>{@link #getErrorClass()} is the SDK's class ({@code "InfeasibleError"}, {@code "ConfigError"}
 * for a bad argument or option, {@code "CostTableError"} for a malformed cost table,
 * {@code "CodecError"}, {@code "CloudUnavailableError"}, ...; see
 * {@code jointdnn_edge/errors.py}) or a Python built-in ({@code "TypeError"}) for a call the
 * SDK did not expect. {@link #isA(String)} also matches base classes, so
 * {@code e.isA("TransportError")} is true for every network failure and
 * {@code e.isA("JointDNNError")} for every SDK error.
 *
 * <p>A subclass of Chaquopy's {@code PyException} (unchecked), so code that catches
 * {@code PyException} around SDK calls keeps working; the original {@code PyException} is kept
 * as the cause. {@link #getMessage()} is the Python message alone and {@link #toString()} is
 * {@code "ErrorClass: message"}.
 */
public class JointDnnException extends PyException {
    private static final long serialVersionUID = 1L;

    private final String errorClass;
    private final List<String> hierarchy;
    private final boolean sdkError;
    private final String constraint;
    private final Double best;
    private final Integer status;

    public JointDnnException(String errorClass, String message, List<String> hierarchy, boolean sdkError,
                             String constraint, Double best, Integer status, Throwable cause) {
        super(message, cause);
        this.errorClass = errorClass;
        List<String> h = new ArrayList<>();
        if (hierarchy != null) {
            h.addAll(hierarchy);
        }
        if (!h.contains(errorClass)) {
            h.add(0, errorClass);
        }
        this.hierarchy = Collections.unmodifiableList(h);
        this.sdkError = sdkError;
        this.constraint = constraint;
        this.best = best;
        this.status = status;
    }

    /** Python class name of the error, e.g. {@code "InfeasibleError"}. */
    public String getErrorClass() {
        return errorClass;
    }

    /** The class and its Python base classes, most specific first (as far as known). */
    public List<String> getHierarchy() {
        return hierarchy;
    }

    /** True when the class is {@code className} or derives from it. */
    public boolean isA(String className) {
        return hierarchy.contains(className);
    }

    /** True for the SDK's own errors (subclasses of {@code JointDNNError}). */
    public boolean isSdkError() {
        return sdkError;
    }

    /** For {@code InfeasibleError}: the bound that cannot be met ({@code "deadline_ms"}, ...), else null. */
    public String getConstraint() {
        return constraint;
    }

    /** For {@code InfeasibleError}: the smallest value of that constraint any schedule reaches, if known. */
    public Double getBest() {
        return best;
    }

    /** For {@code RemoteError}: the HTTP status the cloud answered with, if any. */
    public Integer getStatus() {
        return status;
    }

    @Override
    public String toString() {
        return errorClass + ": " + getMessage();
    }

    /**
     * The typed error for a failed call: from the SDK's structured record ({@code last_error()} JSON)
     * when there is one, else parsed from the {@code PyException} text.
     */
    public static JointDnnException from(PyException cause, String lastErrorJson) {
        if (lastErrorJson != null) {
            try {
                JSONObject o = new JSONObject(lastErrorJson);
                List<String> hierarchy = new ArrayList<>();
                JSONArray h = o.optJSONArray("hierarchy");
                if (h != null) {
                    for (int i = 0; i < h.length(); i++) {
                        hierarchy.add(h.getString(i));
                    }
                }
                Double best = o.isNull("best") ? null : o.getDouble("best");
                Integer status = o.isNull("status") ? null : o.getInt("status");
                String constraint = o.isNull("constraint") ? null : o.getString("constraint");
                return new JointDnnException(o.getString("type"), o.getString("message"), hierarchy,
                        o.optBoolean("sdk_error"), constraint, best, status, cause);
            } catch (JSONException ignored) {
                // a malformed record: fall back to the exception text below
            }
        }
        String[] parts = splitMessage(cause.getMessage());
        return new JointDnnException(parts[0], parts[1], null, false, null, null, null, cause);
    }

    /**
     * {@code {errorClass, message}} from a {@code PyException} message.
     *
     * <p>Chaquopy words it as {@code "ClassName: message"} (module-qualified for classes outside
     * the built-ins, e.g. {@code "jointdnn_edge.errors.InfeasibleError: ..."}); older versions put a
     * whole Python traceback there, where the exception follows the last traceback's indented
     * frames. Text that names no class gives {@code {"PyException", text}}.
     */
    public static String[] splitMessage(String text) {
        if (text == null) {
            return new String[] {"PyException", ""};
        }
        String s = text.trim();
        String header = "Traceback (most recent call last):";
        int tb = s.lastIndexOf(header);
        if (tb >= 0) {
            // a traceback: the exception is the first unindented line after the last header (frames are
            // indented); a multi-line message continues to the end
            String[] lines = s.substring(tb + header.length()).split("\n", -1);
            for (int i = 1; i < lines.length; i++) {
                if (!lines[i].isEmpty() && !Character.isWhitespace(lines[i].charAt(0))) {
                    StringBuilder rest = new StringBuilder(lines[i]);
                    for (int j = i + 1; j < lines.length; j++) {
                        rest.append('\n').append(lines[j]);
                    }
                    s = rest.toString();
                    break;
                }
            }
        }
        int colon = s.indexOf(':');
        String head = colon < 0 ? s : s.substring(0, colon);
        if (!isDottedName(head)) {
            return new String[] {"PyException", s};
        }
        String name = head.substring(head.lastIndexOf('.') + 1);
        String message = colon < 0 ? "" : s.substring(colon + 1).trim();
        return new String[] {name, message};
    }

    private static boolean isDottedName(String s) {
        if (s.isEmpty()) {
            return false;
        }
        for (String part : s.split("\\.", -1)) {
            if (part.isEmpty() || !Character.isJavaIdentifierStart(part.charAt(0))) {
                return false;
            }
            for (int i = 1; i < part.length(); i++) {
                if (!Character.isJavaIdentifierPart(part.charAt(i))) {
                    return false;
                }
            }
        }
        return true;
    }
}
