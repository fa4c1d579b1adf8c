package cardsuite.simbridge;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

import javacard.framework.JCSystem;

import org.objectweb.asm.ClassReader;
import org.objectweb.asm.ClassVisitor;
import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.MethodVisitor;
import org.objectweb.asm.Opcodes;
import org.objectweb.asm.Type;

/**
 * What applet code allocates, in bytes, by kind: persistent (arrays from {@code new}, instances of applet classes),
 * CLEAR_ON_RESET and CLEAR_ON_DESELECT (arrays from {@code JCSystem.makeTransient*Array}), and how many API
 * objects it creates with {@code new} (OwnerPIN, ...; their size is the card's, not ours). Sizes as a Java Card
 * VM stores them (JCVM 3.0.5 ch. 2.2: byte and boolean 1, short 2, int 4, a reference 2), without object headers.
 * Objects the API's factories make (keys from KeyBuilder, Cipher and Signature engines) are not counted.
 * JVM-wide totals: the host reads them before and after an install or a command on one card.
 */
public final class AllocationMeter {
    public static final int PERSISTENT = 0;
    public static final int CLEAR_ON_RESET = 1;   // JCSystem.CLEAR_ON_RESET
    public static final int CLEAR_ON_DESELECT = 2; // JCSystem.CLEAR_ON_DESELECT
    public static final int API_OBJECTS = 3;
    private static final AtomicLong[] TOTALS = {new AtomicLong(), new AtomicLong(), new AtomicLong(), new AtomicLong()};
    private static final Map<Class<?>, Integer> INSTANCE_SIZES = new ConcurrentHashMap<>();
    private static final String SELF = "cardsuite/simbridge/AllocationMeter";

    private AllocationMeter() {
    }

    /** The four totals: persistent bytes, CLEAR_ON_RESET bytes, CLEAR_ON_DESELECT bytes, API objects. */
    public static long[] totals() {
        long[] out = new long[TOTALS.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = TOTALS[i].get();
        }
        return out;
    }

    public static void array(int length, int elementSize) {
        if (length > 0) {
            TOTALS[PERSISTENT].addAndGet((long) length * elementSize);
        }
    }

    public static void instance(Class<?> type) {
        if (!(type.getClassLoader() instanceof AppletClassLoader)) {
            TOTALS[API_OBJECTS].incrementAndGet();
            return;
        }
        TOTALS[PERSISTENT].addAndGet(INSTANCE_SIZES.computeIfAbsent(type, AllocationMeter::fieldBytes));
    }

    private static int fieldBytes(Class<?> type) {
        int bytes = 0;
        for (Class<?> c = type; c != null && c.getClassLoader() instanceof AppletClassLoader; c = c.getSuperclass()) {
            for (Field field : c.getDeclaredFields()) {
                if (!Modifier.isStatic(field.getModifiers())) {
                    bytes += size(field.getType());
                }
            }
        }
        return bytes;
    }

    private static int size(Class<?> type) {
        if (type == byte.class || type == boolean.class) {
            return 1;
        }
        if (type == int.class) {
            return 4;
        }
        return 2; // short, and a reference
    }

    private static void transientArray(short length, byte event, int elementSize) {
        if (length > 0 && (event == JCSystem.CLEAR_ON_RESET || event == JCSystem.CLEAR_ON_DESELECT)) {
            TOTALS[event].addAndGet((long) length * elementSize);
        }
    }

    public static byte[] makeTransientByteArray(short length, byte event) {
        byte[] array = JCSystem.makeTransientByteArray(length, event);
        transientArray(length, event, 1);
        return array;
    }

    public static boolean[] makeTransientBooleanArray(short length, byte event) {
        boolean[] array = JCSystem.makeTransientBooleanArray(length, event);
        transientArray(length, event, 1);
        return array;
    }

    public static short[] makeTransientShortArray(short length, byte event) {
        short[] array = JCSystem.makeTransientShortArray(length, event);
        transientArray(length, event, 2);
        return array;
    }

    public static Object[] makeTransientObjectArray(short length, byte event) {
        Object[] array = JCSystem.makeTransientObjectArray(length, event);
        transientArray(length, event, 2);
        return array;
    }

    /** Applet bytecode with a count before every array allocation and after every NEW, and JCSystem's
     * makeTransient*Array calls through the counting ones above. No branch is added and the stack at every
     * existing instruction boundary is unchanged, so the frames stay valid. */
    static byte[] instrument(byte[] classFile) {
        ClassReader reader = new ClassReader(classFile);
        ClassWriter writer = new ClassWriter(reader, ClassWriter.COMPUTE_MAXS);
        reader.accept(new ClassVisitor(Opcodes.ASM7, writer) {
            @Override
            public MethodVisitor visitMethod(int access, String name, String descriptor, String signature,
                                             String[] exceptions) {
                return new Counting(super.visitMethod(access, name, descriptor, signature, exceptions));
            }
        }, 0);
        return writer.toByteArray();
    }

    private static final class Counting extends MethodVisitor {
        Counting(MethodVisitor next) {
            super(Opcodes.ASM7, next);
        }

        private void countArray(int elementSize) {
            super.visitInsn(Opcodes.DUP); // the length
            super.visitIntInsn(Opcodes.BIPUSH, elementSize);
            super.visitMethodInsn(Opcodes.INVOKESTATIC, SELF, "array", "(II)V", false);
        }

        @Override
        public void visitIntInsn(int opcode, int operand) {
            if (opcode == Opcodes.NEWARRAY) {
                countArray(operand == Opcodes.T_INT ? 4 : operand == Opcodes.T_SHORT || operand == Opcodes.T_CHAR ? 2
                        : operand == Opcodes.T_LONG || operand == Opcodes.T_DOUBLE ? 8 : 1);
            }
            super.visitIntInsn(opcode, operand);
        }

        @Override
        public void visitTypeInsn(int opcode, String type) {
            if (opcode == Opcodes.ANEWARRAY) {
                countArray(2);
            }
            super.visitTypeInsn(opcode, type);
            if (opcode == Opcodes.NEW) { // after the NEW: a label on it keeps pointing at it (uninitialised frames)
                super.visitLdcInsn(Type.getObjectType(type));
                super.visitMethodInsn(Opcodes.INVOKESTATIC, SELF, "instance", "(Ljava/lang/Class;)V", false);
            }
        }

        @Override
        public void visitMethodInsn(int opcode, String owner, String name, String descriptor, boolean isInterface) {
            if (opcode == Opcodes.INVOKESTATIC && owner.equals("javacard/framework/JCSystem")
                    && name.startsWith("makeTransient") && name.endsWith("Array")) {
                super.visitMethodInsn(opcode, SELF, name, descriptor, false);
                return;
            }
            super.visitMethodInsn(opcode, owner, name, descriptor, isInterface);
        }
    }
}
