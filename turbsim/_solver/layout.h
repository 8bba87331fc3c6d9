/*
 * turbsim native kernels: names of the variables and axes, shared by every part of the
 * solver and independent of the floating-point type.
 *
 * A state vector has NV entries: conserved (rho, rho vx, rho vy, rho vz) in the grid,
 * primitive (rho, vx, vy, vz) in the work planes. A face state has one more, IH: the
 * pressure correction h of RAMSES's predictor (see muscl_impl.h).
 */
#ifndef TURBSIM_LAYOUT_H
#define TURBSIM_LAYOUT_H

enum { IDN = 0, IVX = 1, IVY = 2, IVZ = 3 };
enum { IH = 4 };
#define NV 4    /* variables of a state: IDN .. IVZ */
#define NF 5    /* variables of a face state: IDN .. IH */

/* Direction of a face's normal. */
typedef enum { AXIS_X = 0, AXIS_Y = 1, AXIS_Z = 2 } ts_axis;

/* Velocity components seen from a face normal to each axis: normal, first and second
 * transverse. */
static const int ts_velocity_frame[3][3] = {
    {IVX, IVY, IVZ},
    {IVY, IVX, IVZ},
    {IVZ, IVX, IVY},
};

#endif
