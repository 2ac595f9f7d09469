/*
 * Test driver for tests/test_android_java.py -- runs the parts of the Java facade that need
 * neither Chaquopy nor org.json at run time (error-message parsing, tensor byte layout), so the
 * Python tests can check them against real Python exceptions and numpy arrays.
 *
 *   java BridgeChecks split FILE                    -> errorClass, newline, message of a PyException text
 *   java BridgeChecks read DTYPE FILE D0 D1 ...     -> the tensor's elements, one per line
 *   java BridgeChecks write DTYPE OUT D0 D1 ... -- V0 V1 ...  -> writes Tensor.ofX(values).data()
 *   java BridgeChecks size DTYPE NBYTES D0 D1 ...   -> "ok" or the constructor's exception class
 */

import com.chaquo.python.PyException;
import io.jointdnn.edge.JointDnnException;
import io.jointdnn.edge.Tensor;

import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

public final class BridgeChecks {
    private BridgeChecks() {}

    public static void main(String[] args) throws IOException {
        PrintStream out = new PrintStream(System.out, true, "UTF-8");
        switch (args[0]) {
            case "split": {
                String text = new String(Files.readAllBytes(Paths.get(args[1])), StandardCharsets.UTF_8);
                // through the same path the facade takes when no structured record exists
                JointDnnException e = JointDnnException.from(new PyException(text), null);
                PyException asCaught = e; // compiles only while a catch (PyException) also catches SDK errors
                out.print(e.getErrorClass() + "\n" + asCaught.getMessage());
                break;
            }
            case "read": {
                byte[] data = Files.readAllBytes(Paths.get(args[2]));
                Tensor t = new Tensor("t", args[1], dims(args, 3, args.length), data);
                if (args[1].equals("float32")) {
                    for (float v : t.toFloats()) out.println(Float.toString(v));
                } else if (args[1].equals("int32")) {
                    for (int v : t.toInts()) out.println(v);
                } else {
                    for (long v : t.toLongs()) out.println(v);
                }
                break;
            }
            case "write": {
                int sep = Arrays.asList(args).indexOf("--");
                long[] shape = dims(args, 3, sep);
                String[] vals = Arrays.copyOfRange(args, sep + 1, args.length);
                Tensor t;
                if (args[1].equals("float32")) {
                    float[] v = new float[vals.length];
                    for (int i = 0; i < v.length; i++) v[i] = Float.parseFloat(vals[i]);
                    t = Tensor.ofFloats("t", shape, v);
                } else if (args[1].equals("int32")) {
                    int[] v = new int[vals.length];
                    for (int i = 0; i < v.length; i++) v[i] = Integer.parseInt(vals[i]);
                    t = Tensor.ofInts("t", shape, v);
                } else {
                    long[] v = new long[vals.length];
                    for (int i = 0; i < v.length; i++) v[i] = Long.parseLong(vals[i]);
                    t = Tensor.ofLongs("t", shape, v);
                }
                try (OutputStream f = new FileOutputStream(args[2])) {
                    f.write(t.data());
                }
                out.println(t.dtype() + " " + t.size());
                break;
            }
            case "size": {
                try {
                    new Tensor("t", args[1], dims(args, 3, args.length), new byte[Integer.parseInt(args[2])]);
                    out.println("ok");
                } catch (RuntimeException e) {
                    out.println(e.getClass().getSimpleName());
                }
                break;
            }
            default:
                throw new IllegalArgumentException("unknown check " + args[0]);
        }
    }

    private static long[] dims(String[] args, int from, int to) {
        List<Long> d = new ArrayList<>();
        for (int i = from; i < to; i++) d.add(Long.parseLong(args[i]));
        long[] out = new long[d.size()];
        for (int i = 0; i < out.length; i++) out[i] = d.get(i);
        return out;
    }
}
