package cardsuite.simbridge;

import java.util.Set;
import org.objectweb.asm.ClassReader;
import org.objectweb.asm.ClassVisitor;
import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.MethodVisitor;
import org.objectweb.asm.Opcodes;
import org.objectweb.asm.Type;

/**
 * Rewrites an applet class so every write it makes to memory goes through {@link PersistentMemory}: array stores
 * become calls, field stores get a call just before them, and calls to the writing methods of
 * javacard.framework.Util are redirected to PersistentMemory's methods of the same signature.
 *
 * Static initialisers are left alone: on a card they run when the package is loaded, not as part of a command.
 * In a constructor, field stores before the super(...)/this(...) call are left alone too: the object is not yet
 * initialised, so it cannot be passed to a method (javac stores captured outer instances there).
 */
final class PersistentWriteInstrumenter {
    private static final String HOOKS = Type.getInternalName(PersistentMemory.class);
    private static final String UTIL = "javacard/framework/Util";
    /** KeyBuilder.buildKey calls go through a hook that registers transient keys with the card's memory. */
    private static final String KEY_BUILDER = "javacard/security/KeyBuilder";
    private static final Set<String> KEY_BUILDERS = Set.of(
            "buildKey(BSZ)Ljavacard/security/Key;",
            "buildKey(BBSZ)Ljavacard/security/Key;");
    /** Crypto calls counted per command, so benchmarks report measured on-card work, not a model of it. */
    private static final java.util.Set<String> COUNTED_OPERATIONS = java.util.Set.of(
            "MessageDigest.doFinal", "Signature.sign", "Signature.verify", "KeyAgreement.generateSecret",
            "Cipher.doFinal", "KeyPair.genKeyPair");
    private static final Set<String> UTIL_WRITERS = Set.of(
            "arrayCopy([BS[BSS)S",
            "arrayCopyNonAtomic([BS[BSS)S",
            "arrayFillNonAtomic([BSSB)S",
            "setShort([BSS)S");

    private PersistentWriteInstrumenter() {
    }

    static byte[] instrument(byte[] classFile) {
        ClassReader reader = new ClassReader(classFile);
        // COMPUTE_MAXS: a field-store hook needs a few more stack slots. Frames stay valid: no branches are added
        // and the stack at every existing instruction boundary is unchanged.
        ClassWriter writer = new ClassWriter(reader, ClassWriter.COMPUTE_MAXS);
        reader.accept(new ClassVisitor(Opcodes.ASM7, writer) {
            @Override
            public MethodVisitor visitMethod(int access, String name, String descriptor, String signature,
                                             String[] exceptions) {
                MethodVisitor next = super.visitMethod(access, name, descriptor, signature, exceptions);
                if (name.equals("<clinit>")) {
                    return next;
                }
                return new WriteRedirector(next, name.equals("<init>"));
            }
        }, 0);
        return writer.toByteArray();
    }

    private static final class WriteRedirector extends MethodVisitor {
        /** False in a constructor until its super(...)/this(...) call: 'this' may not be passed around before. */
        private boolean receiverInitialised;
        /** NEWs whose constructor call is still to come, to tell them apart from the super(...) call. */
        private int pendingNews;

        WriteRedirector(MethodVisitor next, boolean constructor) {
            super(Opcodes.ASM7, next);
            receiverInitialised = !constructor;
        }

        @Override
        public void visitInsn(int opcode) {
            switch (opcode) {
                case Opcodes.BASTORE: callHook("storeByte", "(Ljava/lang/Object;II)V"); break;
                case Opcodes.SASTORE: callHook("storeShort", "([SII)V"); break;
                case Opcodes.CASTORE: callHook("storeChar", "([CII)V"); break;
                case Opcodes.IASTORE: callHook("storeInt", "([III)V"); break;
                case Opcodes.LASTORE: callHook("storeLong", "([JIJ)V"); break;
                case Opcodes.FASTORE: callHook("storeFloat", "([FIF)V"); break;
                case Opcodes.DASTORE: callHook("storeDouble", "([DID)V"); break;
                case Opcodes.AASTORE: callHook("storeReference", "([Ljava/lang/Object;ILjava/lang/Object;)V"); break;
                default: super.visitInsn(opcode);
            }
        }

        @Override
        public void visitTypeInsn(int opcode, String type) {
            if (opcode == Opcodes.NEW) {
                pendingNews++;
            }
            super.visitTypeInsn(opcode, type);
        }

        @Override
        public void visitFieldInsn(int opcode, String owner, String name, String descriptor) {
            if (opcode == Opcodes.PUTFIELD && receiverInitialised) {
                // stack: target, value -> target, value, target (for the hook)
                if (Type.getType(descriptor).getSize() == 2) {
                    super.visitInsn(Opcodes.DUP2_X1);
                    super.visitInsn(Opcodes.POP2);
                    super.visitInsn(Opcodes.DUP_X2);
                } else {
                    super.visitInsn(Opcodes.DUP2);
                    super.visitInsn(Opcodes.POP);
                }
                pushFieldName(owner, name);
                callHook("beforeFieldWrite", "(Ljava/lang/Object;Ljava/lang/Class;Ljava/lang/String;)V");
            } else if (opcode == Opcodes.PUTSTATIC) {
                pushFieldName(owner, name);
                callHook("beforeStaticWrite", "(Ljava/lang/Class;Ljava/lang/String;)V");
            }
            super.visitFieldInsn(opcode, owner, name, descriptor);
        }

        @Override
        public void visitMethodInsn(int opcode, String owner, String name, String descriptor, boolean isInterface) {
            if (opcode == Opcodes.INVOKESPECIAL && name.equals("<init>") && !receiverInitialised) {
                if (pendingNews == 0) {
                    receiverInitialised = true;
                } else {
                    pendingNews--;
                }
            }
            if (opcode == Opcodes.INVOKESTATIC && owner.equals(UTIL) && UTIL_WRITERS.contains(name + descriptor)) {
                callHook(name, descriptor);
                return;
            }
            if (opcode == Opcodes.INVOKESTATIC && owner.equals(KEY_BUILDER)
                    && KEY_BUILDERS.contains(name + descriptor)) {
                callHook(name, descriptor);
                return;
            }
            String operation = owner.substring(owner.lastIndexOf('/') + 1) + "." + name;
            if (opcode == Opcodes.INVOKEVIRTUAL && COUNTED_OPERATIONS.contains(operation)) {
                super.visitLdcInsn(operation);
                callHook("countOperation", "(Ljava/lang/String;)V");
            }
            super.visitMethodInsn(opcode, owner, name, descriptor, isInterface);
        }

        private void pushFieldName(String owner, String name) {
            super.visitLdcInsn(Type.getObjectType(owner));
            super.visitLdcInsn(name);
        }

        private void callHook(String name, String descriptor) {
            super.visitMethodInsn(Opcodes.INVOKESTATIC, HOOKS, name, descriptor, false);
        }
    }
}
