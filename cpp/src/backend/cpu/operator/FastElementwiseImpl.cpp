#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "aidge/incremental/backend/cpu/FastKernelRegistry.hpp"
#include "aidge/incremental/backend/cpu/operator/FastAddImpl.hpp"
#include "aidge/incremental/backend/cpu/operator/FastElementwiseImpl_kernels.hpp"
#include "aidge/incremental/backend/cpu/operator/FastReLUImpl.hpp"
#include "aidge/operator/Add.hpp"
#include "aidge/operator/ReLU.hpp"
#include "aidge/utils/Registrar.hpp"

namespace Aidge {
namespace incremental {

void FastReLUImpl::fastForward()
{
    const auto &op = static_cast<const OperatorTensor &>(mOp);
    if (op.getInput(0)->dims() != op.getOutput(0)->dims()) {
        throw std::runtime_error("FastReLU: input and output shapes differ");
    }
    fastReLUForward(static_cast<long>(op.getOutput(0)->size()),
                    floatPtr(op.getInput(0), "FastReLU", "input"),
                    floatPtr(op.getOutput(0), "FastReLU", "output"));
}

void FastReLUImpl::fastBackward()
{
    const auto &op = static_cast<const OperatorTensor &>(mOp);
    fastReLUBackward(static_cast<long>(op.getOutput(0)->size()),
                     floatPtr(op.getInput(0), "FastReLU", "input"),
                     floatPtr(op.getOutput(0)->grad(), "FastReLU", "output gradient"),
                     floatPtr(op.getInput(0)->grad(), "FastReLU", "input gradient"));
}

std::shared_ptr<OperatorImpl> FastReLUImpl::makeAidgeImpl() const
{
    return Registrar<ReLU_Op>::create("cpu")(static_cast<const ReLU_Op &>(mOp));
}

namespace {

/// Two inputs of the output's shape; broadcasting goes to Aidge's kernel.
bool sameShapes(const OperatorTensor &op)
{
    return op.nbInputs() == 2 && op.getInput(0)->dims() == op.getOutput(0)->dims() &&
           op.getInput(1)->dims() == op.getOutput(0)->dims();
}

} // namespace

void FastAddImpl::fastForward()
{
    const auto &op = static_cast<const OperatorTensor &>(mOp);
    if (!sameShapes(op)) {
        aidgeImpl().forward();
        return;
    }
    fastAddForward(static_cast<long>(op.getOutput(0)->size()),
                   floatPtr(op.getInput(0), "FastAdd", "input #0"),
                   floatPtr(op.getInput(1), "FastAdd", "input #1"),
                   floatPtr(op.getOutput(0), "FastAdd", "output"));
}

void FastAddImpl::fastBackward()
{
    const auto &op = static_cast<const OperatorTensor &>(mOp);
    if (!sameShapes(op)) {
        aidgeImpl().backward();
        return;
    }
    fastAddBackward(static_cast<long>(op.getOutput(0)->size()),
                    floatPtr(op.getOutput(0)->grad(), "FastAdd", "output gradient"),
                    floatPtr(op.getInput(0)->grad(), "FastAdd", "input #0 gradient"),
                    floatPtr(op.getInput(1)->grad(), "FastAdd", "input #1 gradient"));
}

std::shared_ptr<OperatorImpl> FastAddImpl::makeAidgeImpl() const
{
    return Registrar<Add_Op>::create("cpu")(static_cast<const Add_Op &>(mOp));
}

namespace {

FastKernel fastAddKernel()
{
    FastKernel kernel = FastKernel::of<Add_Op, FastAddImpl>();
    kernel.unsupportedReason = [](const OperatorTensor &op) -> std::string {
        if (!dynamic_cast<const Add_Op *>(&op) || op.nbInputs() != 2) {
            return "Add with other than two inputs";
        }
        if (op.getInput(0) && op.getInput(1) && op.getInput(0)->dims() != op.getInput(1)->dims()) {
            return fmt::format("broadcasting Add {} + {}", op.getInput(0)->dims(), op.getInput(1)->dims());
        }
        return "";
    };
    return kernel;
}

const FastKernelRegistrar registerFastReLU(ReLU_Op::Type, FastKernel::of<ReLU_Op, FastReLUImpl>());
const FastKernelRegistrar registerFastAdd(Add_Op::Type, fastAddKernel());

} // namespace

} // namespace incremental
} // namespace Aidge
